//! Entry points for the fuzz targets in `fuzz/` only. Not a stable API: hidden from the docs.

use crate::error::Error;

/// Resolves a redirect's `Location` against the URL it answered, as the redirect loop does.
pub fn resolve_location(base: &str, location: &str) -> Result<String, Error> {
    let base = crate::request::parse_url(base)?;
    crate::client::resolve_location(&base, location).map(|u| u.to_string())
}
