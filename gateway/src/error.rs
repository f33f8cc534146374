//! Every error code the gateway answers with, in one place: the `extensions.code`
//! of a GraphQL error, and of the JSON body of an HTTP refusal. A frontend branches
//! on these, never on the message.

/// A machine-readable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// An argument does not parse or is out of range (nothing was sent).
    BadInput,
    /// No key, or a key that is not valid.
    Unauthenticated,
    /// A valid key that may not do this (another account, a read-only key, not
    /// an admin).
    Forbidden,
    UnknownAsset,
    UnknownMarket,
    /// Nothing with that id (yet).
    NotFound,
    /// The engine refused the command (the receipt says why).
    Rejected,
    /// The key's rate limit: retry after `Retry-After`.
    RateLimited,
    /// The gateway is at a limit of requests or connections: retry shortly.
    Overloaded,
    /// The commands log cannot be reached, or is not what the gateway expects.
    Unavailable,
    /// A fault inside the gateway or its read models.
    Internal,
    /// A subscription fell behind the projector and was ended: nothing it would have
    /// carried is skipped silently. Reload what it shows (queries answer with the
    /// `seq` they reflect) and subscribe again.
    Resync,
}

impl Code {
    /// Every code, for the docs and tests.
    pub const ALL: [Code; 12] = [
        Code::BadInput,
        Code::Unauthenticated,
        Code::Forbidden,
        Code::UnknownAsset,
        Code::UnknownMarket,
        Code::NotFound,
        Code::Rejected,
        Code::RateLimited,
        Code::Overloaded,
        Code::Unavailable,
        Code::Internal,
        Code::Resync,
    ];

    /// The code as it travels: `BAD_INPUT`, `FORBIDDEN`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadInput => "BAD_INPUT",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::UnknownAsset => "UNKNOWN_ASSET",
            Code::UnknownMarket => "UNKNOWN_MARKET",
            Code::NotFound => "NOT_FOUND",
            Code::Rejected => "REJECTED",
            Code::RateLimited => "RATE_LIMITED",
            Code::Overloaded => "OVERLOADED",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
            Code::Resync => "RESYNC",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
