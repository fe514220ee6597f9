//! Event arguments kept as raw JSON text, plus binary attachments.
//!
//! The core never builds a JSON tree: an [`Args`] is the JSON text of the arguments with the byte
//! range of each one, and the attachments their `{"_placeholder":true,"num":N}` objects refer to.
//! Drivers materialise them: the native driver deserialises straight into the user's serde type,
//! the browser driver hands the text to `JSON.parse` with a reviver for the placeholders.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use crate::json;
use crate::socketio;

/// Why arguments handed to the core were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// The text is not a JSON array.
    NotAnArray(json::JsonError),
    /// A placeholder is malformed or refers to an attachment that was not supplied, or an
    /// attachment is never referred to.
    Placeholders,
    /// More attachments than the configured cap.
    TooManyAttachments,
}

impl ArgsError {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::NotAnArray(e) => {
                return Cow::Owned(crate::text::concat(&[
                    "arguments must be a JSON array: ",
                    e.reason,
                    " at byte ",
                    &crate::text::decimal(e.offset as u64),
                ]));
            }
            Self::Placeholders => {
                "binary placeholders do not match the attachments (each attachment needs one {\"_placeholder\":true,\"num\":N})"
            }
            Self::TooManyAttachments => "too many binary attachments in one packet",
        })
    }
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ArgsError {}

/// Event or ack arguments: raw JSON slices over one owned text, plus binary attachments.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Args {
    text: String,
    items: Vec<Range<usize>>,
    attachments: Vec<Vec<u8>>,
}

impl Args {
    /// No arguments.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Arguments from the JSON text of an array (`[1,"two",{"three":3}]`) and the attachments its
    /// placeholders refer to. The text is validated strictly; placeholders must match the
    /// attachments exactly.
    pub fn from_json_array(text: String, attachments: Vec<Vec<u8>>) -> Result<Self, ArgsError> {
        let items = json::array_elements(&text).map_err(ArgsError::NotAnArray)?;
        let args = Self { text, items, attachments };
        args.check_placeholders(socketio::DEFAULT_MAX_ATTACHMENTS.max(args.attachments.len()))?;
        Ok(args)
    }

    /// One JSON value per argument (each validated), with attachments.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = &'a str>,
        attachments: Vec<Vec<u8>>,
    ) -> Result<Self, ArgsError> {
        let mut text = String::from("[");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(v);
        }
        text.push(']');
        Self::from_json_array(text, attachments)
    }

    /// Wraps already-validated slices of a received packet (no copy). Not inlined in the browser
    /// build (three call sites).
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(crate) fn from_parts(text: String, items: Vec<Range<usize>>, attachments: Vec<Vec<u8>>) -> Self {
        Self { text, items, attachments }
    }

    pub(crate) fn check_placeholders(&self, max_attachments: usize) -> Result<(), ArgsError> {
        if self.attachments.len() > max_attachments {
            return Err(ArgsError::TooManyAttachments);
        }
        let mut seen = vec![false; self.attachments.len()];
        for item in self.iter() {
            for num in socketio::placeholders(item).map_err(|_| ArgsError::Placeholders)? {
                let slot = usize::try_from(num).ok().and_then(|n| seen.get_mut(n)).ok_or(ArgsError::Placeholders)?;
                *slot = true;
            }
        }
        if seen.iter().all(|s| *s) { Ok(()) } else { Err(ArgsError::Placeholders) }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The raw JSON text of argument `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.items.get(i).and_then(|r| self.text.get(r.clone()))
    }

    /// The raw JSON text of each argument, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.items.iter().filter_map(|r| self.text.get(r.clone()))
    }

    /// The binary attachments the placeholders refer to, by `num`.
    pub fn attachments(&self) -> &[Vec<u8>] {
        &self.attachments
    }

    /// Takes the attachments out (for drivers that move them into JS buffers).
    pub fn take_attachments(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.attachments)
    }

    /// The arguments as one JSON array text (`[a,b]`), placeholders included.
    pub fn to_json_array(&self) -> String {
        let mut out = String::with_capacity(self.inner_len() + 2);
        out.push('[');
        self.write_inner(&mut out);
        out.push(']');
        out
    }

    /// Writes `a,b,c` (without brackets) to `out`.
    pub(crate) fn write_inner(&self, out: &mut String) {
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item);
        }
    }

    /// Byte length of `a,b,c`.
    pub(crate) fn inner_len(&self) -> usize {
        self.items.iter().map(|r| r.len()).sum::<usize>() + self.items.len().saturating_sub(1)
    }

    /// Drops the last argument (the recovery offset) and returns its raw text.
    pub(crate) fn pop(&mut self) -> Option<&str> {
        let r = self.items.pop()?;
        self.text.get(r)
    }

    /// Approximate memory held, for buffer limits.
    pub fn byte_size(&self) -> usize {
        self.text.len() + self.attachments.iter().map(Vec::len).sum::<usize>()
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for item in self.iter() {
            l.entry(&format_args!("{item}"));
        }
        for a in &self.attachments {
            l.entry(&format_args!("<{} bytes>", a.len()));
        }
        l.finish()
    }
}
