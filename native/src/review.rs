//! A ConversionReview answered on its bytes: the review read, each object passed through or converted down by its
//! kind's `Plan`, the answer written. Only the successful review of objects the plans answer is handled here;
//! anything else (a malformed review, an unknown kind, a conversion up, an object the exact path must convert) is a
//! `Fallback`, and the Python path answers the whole review, with its messages.

use std::borrow::Cow;

use crate::json::{parse, string, write, write_str, Fallback, Node, Obj, R};
use crate::plan::{Dropped, Plan};

const REVIEW_API_VERSION: &str = "apiextensions.k8s.io/v1";
const REVIEW_KIND: &str = "ConversionReview";

/// One converted kind: its served `group/version`s and its plans by (from, to) `group/version`.
pub struct Kind {
    pub group: String,
    pub kind: String,
    pub served: Vec<String>,
    pub plans: Vec<(String, String, Plan)>,
}

pub struct Converter {
    /// The annotation carrying what v1alpha1 has no home for.
    pub annotation: String,
    pub kinds: Vec<Kind>,
}

impl Converter {
    /// The answer to a ConversionReview, or `Fallback`.
    pub fn review(&self, body: &[u8]) -> R<Vec<u8>> {
        let text = std::str::from_utf8(body).map_err(|_| Fallback)?;
        let mut review = parse(text, At::Review, &guide)?;
        let review = review.obj_mut().ok_or(Fallback)?;
        if text_of(review.get("apiVersion"))?.as_deref() != Some(REVIEW_API_VERSION)
            || text_of(review.get("kind"))?.as_deref() != Some(REVIEW_KIND)
        {
            return Err(Fallback);
        }
        let request = review
            .get_mut("request")
            .and_then(Node::obj_mut)
            .ok_or(Fallback)?;
        let uid = request.get("uid").ok_or(Fallback)?;
        if text_of(Some(uid))?.is_none_or(|uid| uid.is_empty()) {
            return Err(Fallback);
        }
        let uid = uid.received().ok_or(Fallback)?;
        let desired_node = request.get("desiredAPIVersion").ok_or(Fallback)?;
        let desired = text_of(Some(desired_node))?.ok_or(Fallback)?;
        let desired_raw = desired_node.received().ok_or(Fallback)?;
        if !desired.contains('/') {
            return Err(Fallback);
        }
        let objects = match request.get_mut("objects") {
            None => Vec::new(),
            Some(node) if node.kind() == b'n' => Vec::new(),
            Some(node) => std::mem::take(&mut node.list_mut().ok_or(Fallback)?.items),
        };
        let mut out = Vec::with_capacity(body.len() + 512);
        out.extend_from_slice(br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","response":{"uid":"#);
        out.extend_from_slice(uid.as_bytes());
        out.extend_from_slice(br#","result":{"status":"Success"},"convertedObjects":["#);
        for (index, object) in objects.into_iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            self.object(object, &desired, desired_raw, &mut out)?;
        }
        out.extend_from_slice(b"]}}");
        Ok(out)
    }

    fn object<'a>(
        &'a self,
        object: Node<'a>,
        desired: &str,
        desired_raw: &'a str,
        out: &mut Vec<u8>,
    ) -> R<()> {
        let Node::Obj(obj) = object else {
            return Err(Fallback);
        };
        let api_version = text_of(obj.get("apiVersion"))?.ok_or(Fallback)?;
        let kind = text_of(obj.get("kind"))?.ok_or(Fallback)?;
        if kind.is_empty() {
            return Err(Fallback);
        }
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let entry = self
            .kinds
            .iter()
            .find(|k| k.kind == kind && k.group == group)
            .ok_or(Fallback)?;
        if !entry.served.iter().any(|v| v == desired)
            || !entry.served.iter().any(|v| *v == api_version)
        {
            return Err(Fallback);
        }
        if api_version == desired {
            write(&Node::Obj(obj), out);
            return Ok(());
        }
        let (_, _, plan) = entry
            .plans
            .iter()
            .find(|(from, to, _)| *from == api_version && to == desired)
            .ok_or(Fallback)?;
        let (mut old, dropped, hub_metadata) = plan.run(obj)?;
        if hub_metadata
            .as_ref()
            .is_some_and(|metadata| !plain_metadata(metadata))
        {
            return Err(Fallback); // refused by the Python path, with its message
        }
        old.set(Cow::Borrowed("apiVersion"), Node::Raw(desired_raw));
        if let Some(metadata) = hub_metadata {
            old.set(Cow::Borrowed("metadata"), self.without_annotation(metadata));
        }
        if !dropped.is_empty() {
            self.annotate(&mut old, &dropped)?;
        }
        write(&Node::Obj(old), out);
        Ok(())
    }

    /// `metadata` without the conversion annotation: a stale copy of it on a hub object is never authoritative.
    fn without_annotation<'a>(&self, mut metadata: Node<'a>) -> Node<'a> {
        let carries = match &metadata {
            Node::Obj(meta) => {
                matches!(meta.get("annotations"), Some(Node::Obj(a)) if a.contains(&self.annotation))
            }
            _ => false,
        };
        if carries {
            let annotations = metadata
                .obj_mut()
                .and_then(|meta| meta.get_mut("annotations"))
                .and_then(Node::obj_mut);
            if let Some(annotations) = annotations {
                annotations.remove(&self.annotation);
            }
        }
        metadata
    }

    /// Writes what was lost into the annotation, as `conversion.down` does.
    fn annotate<'a>(&'a self, old: &mut Obj<'a>, dropped: &Dropped<'a>) -> R<()> {
        if !old.contains("metadata") {
            old.set(Cow::Borrowed("metadata"), Node::Obj(Obj::default()));
        }
        let metadata = old.get_mut("metadata").ok_or(Fallback)?;
        if metadata.kind() == b'n' {
            *metadata = Node::Obj(Obj::default());
        }
        let meta = metadata.obj_mut().ok_or(Fallback)?;
        let mut patch = Vec::with_capacity(256);
        patch.extend_from_slice(br#"{"set":["#);
        for (index, (path, value)) in dropped.iter().enumerate() {
            if index > 0 {
                patch.push(b',');
            }
            patch.extend_from_slice(b"[[");
            for (i, key) in path.iter().enumerate() {
                if i > 0 {
                    patch.push(b',');
                }
                write_str(key, &mut patch);
            }
            patch.extend_from_slice(b"],");
            write(value, &mut patch);
            patch.push(b']');
        }
        patch.push(b']');
        if !meta.contains("annotations") {
            patch.extend_from_slice(br#","createdAnnotations":true"#);
        }
        patch.push(b'}');
        let patch = String::from_utf8(patch).map_err(|_| Fallback)?;
        let entry = (Cow::Borrowed(self.annotation.as_str()), Node::Str(patch));
        match meta.get_mut("annotations") {
            None => meta.entries.push((
                Cow::Borrowed("annotations"),
                Node::Obj(Obj {
                    entries: vec![entry],
                    raw: None,
                }),
            )),
            Some(annotations) => {
                if annotations.kind() == b'n' {
                    *annotations = Node::Obj(Obj::default());
                }
                let annotations = annotations.obj_mut().ok_or(Fallback)?;
                annotations.set(entry.0, entry.1);
            }
        }
        Ok(())
    }
}

/// Where a value is in a review, for reading it: which containers are opened (the review down to each object,
/// the object's body whole, its metadata down to the annotations), and which are kept as received (`None`).
#[derive(Clone, Copy)]
enum At {
    Review,
    Request,
    Objects,
    Object,
    Metadata,
    Body,
}

fn guide(at: At, key: Option<&str>) -> Option<At> {
    match (at, key) {
        (At::Review, Some("request")) => Some(At::Request),
        (At::Request, Some("objects")) => Some(At::Objects),
        (At::Objects, None) => Some(At::Object),
        (At::Object, Some("metadata")) => Some(At::Metadata),
        // The annotations are opened, their values are not.
        (At::Metadata, Some("annotations")) => Some(At::Metadata),
        (At::Object | At::Body, _) => Some(At::Body),
        _ => None,
    }
}

/// Whether `metadata`, and its annotations, are objects or null (what the conversion converts).
fn plain_metadata(metadata: &Node<'_>) -> bool {
    match metadata {
        Node::Obj(meta) => meta
            .get("annotations")
            .is_none_or(|a| matches!(a.kind(), b'{' | b'n')),
        node => node.kind() == b'n',
    }
}

/// The string a member holds; None when it is absent or not a string.
fn text_of<'a>(node: Option<&Node<'a>>) -> R<Option<Cow<'a, str>>> {
    match node {
        Some(node) => string(node),
        None => Ok(None),
    }
}
