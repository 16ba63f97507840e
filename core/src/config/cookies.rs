//! Config section of the cookie jar.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An RFC 6265 cookie jar per client: `Set-Cookie` from every response (each hop of a redirect
/// chain too) is stored and matching cookies are sent (domain, path, `Secure`, expiry). Off by
/// default, so a server-to-server client never carries one caller's cookies to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CookieConfig {
    /// Keep and send cookies. Default: false.
    pub enabled: bool,
    /// Cookies kept; once full, expired ones are dropped and then new ones are ignored. At least
    /// 1, at most 100_000. Default: 3_000.
    pub max_cookies: u64,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_cookies: 3_000,
        }
    }
}
