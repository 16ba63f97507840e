//! Maps a `wirecore::Error` to the class `wirecore.exceptions.BY_CODE` names for its code.
//!
//! The class tree lives in Python (`exceptions.py`) so each class can also subclass a builtin;
//! an unknown code falls back to `WirecoreError`, which the mapping test forbids.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static BY_CODE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static BASE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn lookup(py: Python<'_>) -> PyResult<(&Py<PyDict>, &Py<PyAny>)> {
    let by_code = BY_CODE.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import("wirecore.exceptions")?;
        Ok(m.getattr("BY_CODE")?.cast_into::<PyDict>()?.unbind())
    })?;
    let base = BASE.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("wirecore.exceptions")?
            .getattr("WirecoreError")?
            .unbind())
    })?;
    Ok((by_code, base))
}

/// The Python exception for an engine error: `cls(message, code)`.
pub(crate) fn to_py(py: Python<'_>, e: &wirecore::Error) -> PyErr {
    let msg = e.full_message();
    let code = e.code();
    match lookup(py) {
        Ok((by_code, base)) => {
            let cls = match by_code.bind(py).get_item(code) {
                Ok(Some(c)) => c,
                _ => base.bind(py).clone(),
            };
            match cls.call1((msg, code)) {
                Ok(v) => PyErr::from_value(v),
                Err(err) => err,
            }
        }
        Err(err) => PyRuntimeError::new_err(format!("{msg} ({code}); and {err}")),
    }
}

/// Converts an engine result, raising the mapped exception.
pub(crate) fn check<T>(py: Python<'_>, r: Result<T, wirecore::Error>) -> PyResult<T> {
    r.map_err(|e| to_py(py, &e))
}

/// The exception the engine would raise for `code` (lets the test suite check every mapping).
#[pyfunction]
#[pyo3(name = "_error_for_code")]
pub(crate) fn error_for_code(py: Python<'_>, code: &str, message: &str) -> PyResult<Py<PyAny>> {
    let Some(kind) = wirecore::ErrorKind::from_code(code) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown error code {code:?}"
        )));
    };
    Ok(to_py(py, &wirecore::Error::new(kind, message))
        .into_value(py)
        .into_any())
}
