//! Room names and who may be in them.
//!
//! | room                       | who is in it                                   |
//! |----------------------------|------------------------------------------------|
//! | `user:<userId>`            | every socket of that user (joined on connect)  |
//! | `tenant:<tenantId>`        | every socket of that tenant (joined on connect)|
//! | `chat:<tenantId>:<chatId>` | sockets that sent `room:join` for it           |
//!
//! Ids are 1-64 characters of `[A-Za-z0-9_-]`, so a room name never needs escaping and a tenant
//! id is safe as a file name.

/// Whether `s` is a valid user, tenant or chat id.
pub fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `user` of `tenant` may see events sent to the room named `name`: the same answer as
/// [`Room::parse`] then [`Room::visible_to`], without allocating (the feed asks it per entry).
pub fn name_visible_to(name: &str, user: &str, tenant: &str) -> bool {
    if let Some(id) = name.strip_prefix("user:") {
        return id == user && valid_id(id);
    }
    if let Some(id) = name.strip_prefix("tenant:") {
        return id == tenant && valid_id(id);
    }
    match name.strip_prefix("chat:").and_then(|rest| rest.split_once(':')) {
        Some((t, chat)) => t == tenant && valid_id(t) && valid_id(chat),
        None => false,
    }
}

/// A parsed room name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    /// `user:<id>`
    User(String),
    /// `tenant:<id>`
    Tenant(String),
    /// `chat:<tenantId>:<chatId>`
    Chat {
        /// The tenant owning the chat.
        tenant: String,
        /// The chat id within the tenant.
        chat: String,
    },
}

impl Room {
    /// Parses a room name; `Err` says what is wrong with it.
    pub fn parse(name: &str) -> Result<Room, String> {
        let bad_id = || format!("invalid room {name:?}: ids are 1-64 characters of [A-Za-z0-9_-]");
        if let Some(id) = name.strip_prefix("user:") {
            return if valid_id(id) { Ok(Room::User(id.to_string())) } else { Err(bad_id()) };
        }
        if let Some(id) = name.strip_prefix("tenant:") {
            return if valid_id(id) { Ok(Room::Tenant(id.to_string())) } else { Err(bad_id()) };
        }
        if let Some(rest) = name.strip_prefix("chat:") {
            let Some((tenant, chat)) = rest.split_once(':') else {
                return Err(format!("invalid room {name:?}: chat rooms are named chat:<tenantId>:<chatId>"));
            };
            return if valid_id(tenant) && valid_id(chat) {
                Ok(Room::Chat { tenant: tenant.to_string(), chat: chat.to_string() })
            } else {
                Err(bad_id())
            };
        }
        Err(format!("unknown room {name:?}: rooms are user:<id>, tenant:<id> or chat:<tenantId>:<chatId>"))
    }

    /// The tenant this room belongs to, when the name says (user rooms don't).
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Room::User(_) => None,
            Room::Tenant(t) | Room::Chat { tenant: t, .. } => Some(t),
        }
    }

    /// Whether `user` of `tenant` may join this room and see events sent to it.
    pub fn visible_to(&self, user: &str, tenant: &str) -> bool {
        match self {
            Room::User(u) => u == user,
            Room::Tenant(t) | Room::Chat { tenant: t, .. } => t == tenant,
        }
    }

    /// The room's name.
    pub fn name(&self) -> String {
        match self {
            Room::User(u) => format!("user:{u}"),
            Room::Tenant(t) => format!("tenant:{t}"),
            Room::Chat { tenant, chat } => format!("chat:{tenant}:{chat}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_authorises() {
        assert_eq!(Room::parse("user:alice"), Ok(Room::User("alice".into())));
        let chat = Room::parse("chat:acme:general").unwrap();
        assert_eq!(chat.name(), "chat:acme:general");
        assert!(chat.visible_to("bob", "acme"));
        assert!(!chat.visible_to("bob", "globex"));
        assert!(!Room::User("alice".into()).visible_to("bob", "acme"));
        assert!(Room::parse("chat:general").unwrap_err().contains("chat:<tenantId>:<chatId>"));
        assert!(Room::parse("lobby").unwrap_err().contains("unknown room"));
        assert!(Room::parse("tenant:a b").is_err());
        assert!(Room::parse("user:").is_err());
    }

    #[test]
    fn name_visibility_matches_parse_then_visible_to() {
        let names = [
            "user:alice",
            "user:bob",
            "tenant:acme",
            "tenant:globex",
            "chat:acme:general",
            "chat:globex:x",
            "chat:acme",
            "chat:acme:",
            "chat:acme:a:b",
            "lobby",
            "user:",
            "tenant:a b",
            "",
        ];
        for name in names {
            for (user, tenant) in [("alice", "acme"), ("bob", "acme"), ("carol", "globex")] {
                let expected = Room::parse(name).is_ok_and(|r| r.visible_to(user, tenant));
                assert_eq!(name_visible_to(name, user, tenant), expected, "{name} for {user}@{tenant}");
            }
        }
    }
}
