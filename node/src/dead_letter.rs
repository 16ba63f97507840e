//! Dead letters for a JS callback: the engine queues them in the bridge's `Letters` and wakes
//! one weak threadsafe function, which hands the queued letters to JS on its own thread (never
//! an engine thread) and never keeps the process alive.
#![expect(
    clippy::needless_pass_by_value,
    reason = "napi hands arguments over by value"
)]

use std::sync::Arc;

use napi::Status;
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use wirecore_bridge::Letters;

/// A request that failed after every retry the policy allowed.
#[napi(object)]
pub struct DeadLetter {
    pub method: String,
    /// Without userinfo.
    pub url: String,
    /// `[name, value]` pairs, without Authorization, Proxy-Authorization and Cookie.
    pub headers: Vec<Vec<String>>,
    /// The body when it was buffered and at most `deadLetter.maxBodyBytes`.
    pub body: Option<Buffer>,
    /// The error's code, or `status` when the last answer had a status the policy retries.
    pub error_code: String,
    pub message: String,
    pub status: Option<u32>,
    pub attempts: u32,
    /// When it failed, milliseconds since the Unix epoch.
    pub time_ms: f64,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("error_code", &self.error_code)
            .finish_non_exhaustive()
    }
}

fn to_js(l: wirecore::DeadLetter) -> DeadLetter {
    DeadLetter {
        method: l.method,
        url: l.url,
        headers: l.headers.into_iter().map(|(k, v)| vec![k, v]).collect(),
        body: l.body.map(|b| Buffer::from(b.to_vec())),
        error_code: l.error_code,
        message: l.message,
        status: l.status.map(u32::from),
        attempts: l.attempts,
        time_ms: l.time_ms as f64,
    }
}

type Tsfn = ThreadsafeFunction<(), (), Vec<DeadLetter>, Status, false, true>;

/// Makes `client` hand its dead letters, in batches, to `callback` on the JS thread.
pub(crate) fn listen(
    client: &wirecore::Client,
    callback: Function<'_, Vec<DeadLetter>, ()>,
) -> napi::Result<()> {
    let letters = Letters::new(client);
    let q = letters.clone();
    let tsfn: Tsfn = callback
        .build_threadsafe_function::<()>()
        .weak::<true>()
        .callee_handled::<false>()
        // Runs on the JS thread outside any `#[napi(catch_unwind)]` entry.
        .build_callback(move |_ctx| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                q.queue().take(usize::MAX).into_iter().map(to_js).collect()
            }))
            .map_err(napi::bindgen_prelude::panic_to_error)
        })?;
    let tsfn = Arc::new(tsfn);
    letters.listen(client, move || {
        // Fails only while the JS environment shuts down: nobody is left to tell.
        let _ = tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
    });
    Ok(())
}
