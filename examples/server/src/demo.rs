//! DEMO ONLY: the built-in users `POST /api/dev/login` hands tokens out for.

/// A demo user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    /// User id (the token's `sub`).
    pub id: &'static str,
    /// Tenant id.
    pub tenant: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// Two tenants, so cross-tenant refusals can be shown; `bot` is the example bot's identity.
pub const USERS: [DemoUser; 5] = [
    DemoUser { id: "alice", tenant: "acme", name: "Alice" },
    DemoUser { id: "bob", tenant: "acme", name: "Bob" },
    DemoUser { id: "bot", tenant: "acme", name: "Assign Bot" },
    DemoUser { id: "carol", tenant: "globex", name: "Carol" },
    DemoUser { id: "dave", tenant: "globex", name: "Dave" },
];

/// The demo user with this id.
pub fn user(id: &str) -> Option<DemoUser> {
    USERS.iter().find(|u| u.id == id).copied()
}

/// Every demo user id.
pub fn ids() -> Vec<&'static str> {
    USERS.iter().map(|u| u.id).collect()
}
