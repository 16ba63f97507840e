//! `wirecore._wirecore`: the PyO3 glue between the engine and the `wirecore` Python package.
//!
//! It converts types, errors and async, nothing more. Blocking calls release the GIL; async
//! calls complete asyncio futures through the `bridge` module, which never enters a finalizing
//! interpreter.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

mod bridge;
mod client;
mod error;
mod log;
mod response;
mod upload;

#[pymodule]
fn _wirecore(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<client::Client>()?;
    m.add_class::<response::RawResponse>()?;
    m.add_class::<response::RawEvents>()?;
    m.add_class::<bridge::Completer>()?;
    m.add_class::<bridge::Pending>()?;
    m.add_class::<bridge::Call>()?;
    m.add_class::<client::Started>()?;
    m.add_class::<upload::Upload>()?;
    m.add_function(wrap_pyfunction!(bridge::shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::panic_in_engine, m)?)?;
    m.add_function(wrap_pyfunction!(error::error_for_code, m)?)?;
    m.add_function(wrap_pyfunction!(log::log_enable, m)?)?;
    m.add_function(wrap_pyfunction!(log::log_next, m)?)?;
    let codes: Vec<&str> = wirecore::ErrorKind::ALL.iter().map(|k| k.code()).collect();
    m.add("ERROR_CODES", PyTuple::new(py, codes)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
