//! `kpack_webhooks._native`: the webhook's ConversionReview fast path, in Rust.
//!
//! Reading a stored (v1alpha2) object through v1alpha1 is the conversion the apiserver asks for most: every get,
//! list page and watch event of a v1alpha1 client. In Python, turning each object's JSON into dicts and back costs
//! more than the conversion itself. Here the review is answered on its bytes: only the objects the conversion looks
//! into are opened, and everything else is copied from the request as it came. The Python path
//! (`kpack_webhooks.reviews`) stays the reference: it answers every review this one leaves (`None`), and the tests
//! hold both to the same answers.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

mod json;
mod plan;
mod review;

/// A model's fields: (JSON name, nested model's shape index, list item model's shape index).
type ShapeSpec = Vec<(String, Option<usize>, Option<usize>)>;
/// (from `group/version`, to `group/version`, moves as (hub path, v1alpha1 path), shapes with the top model first).
type PlanSpec = (
    String,
    String,
    Vec<(Vec<String>, Vec<String>)>,
    Vec<ShapeSpec>,
);
/// (group, kind, served `group/version`s, plans).
type KindSpec = (String, String, Vec<String>, Vec<PlanSpec>);

/// Answers ConversionReviews of the kinds it was built with (see `kpack_webhooks.fastconvert`).
#[pyclass(frozen, module = "kpack_webhooks._native")]
struct ReviewConverter {
    inner: review::Converter,
}

#[pymethods]
impl ReviewConverter {
    #[new]
    fn new(annotation: String, kinds: Vec<KindSpec>) -> PyResult<Self> {
        let mut built = Vec::with_capacity(kinds.len());
        for (group, kind, served, plans) in kinds {
            let mut compiled = Vec::with_capacity(plans.len());
            for (from, to, moves, shapes) in plans {
                let shapes = shapes
                    .into_iter()
                    .map(|fields| plan::Shape {
                        fields: fields
                            .into_iter()
                            .map(|(name, nested, item)| (name, (nested, item)))
                            .collect(),
                    })
                    .collect();
                let plan = plan::Plan::new(moves, shapes).map_err(|why| {
                    PyValueError::new_err(format!("{kind}.{group} {from} -> {to}: {why}"))
                })?;
                compiled.push((from, to, plan));
            }
            built.push(review::Kind {
                group,
                kind,
                served,
                plans: compiled,
            });
        }
        Ok(ReviewConverter {
            inner: review::Converter {
                annotation,
                kinds: built,
            },
        })
    }

    /// The answer to the ConversionReview `body` (JSON bytes), or None for the Python path to answer.
    fn convert<'py>(&self, py: Python<'py>, body: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.review(body))) {
            Ok(Ok(answer)) => Ok(Some(PyBytes::new(py, &answer))),
            Ok(Err(json::Fallback)) => Ok(None),
            // A bug here: an ordinary exception, for the server to answer and log as one.
            Err(_) => Err(PyRuntimeError::new_err("the native conversion panicked")),
        }
    }
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<ReviewConverter>()
}
