//! A JSON document as the conversion sees it, read in one pass (jiter): objects and arrays as members and items,
//! every value remembering the bytes it came as. What the conversion leaves unchanged is written back as those
//! bytes; only what it changed is written member by member.
//!
//! Everything that changes a container goes through `obj_mut`/`list_mut`, which forget its bytes, so a container
//! changed below has forgotten them at every level above it.
//!
//! What this representation cannot answer exactly as the Python path would (a key given twice in an object,
//! nesting deeper than `MAX_DEPTH`, a body that is not UTF-8 JSON) is a `Fallback`: the whole review is left to the
//! Python path.

use std::borrow::Cow;
use std::marker::PhantomData;

use jiter::{Jiter, Peek};

/// The review is left to the Python path, which answers every case (and words every error).
#[derive(Debug)]
pub struct Fallback;

pub type R<T> = Result<T, Fallback>;

impl From<jiter::JiterError> for Fallback {
    fn from(_: jiter::JiterError) -> Self {
        Fallback
    }
}

pub type Key<'a> = Cow<'a, str>;

/// Deepest nesting read here; deeper reviews go to the Python path (which accepts up to 254 levels).
const MAX_DEPTH: usize = 128;

/// One JSON value.
#[derive(Clone)]
pub enum Node<'a> {
    /// A value as received, written back as is: a string (with its quotes and escapes), number, boolean or null,
    /// or a whole container kept only to be written.
    Raw(&'a str),
    Obj(Obj<'a>),
    List(List<'a>),
    /// A string made by the conversion.
    Str(String),
}

/// A JSON object: its members in order, each key once.
#[derive(Clone, Default)]
pub struct Obj<'a> {
    pub entries: Vec<(Key<'a>, Node<'a>)>,
    /// The object as received, while unchanged.
    pub raw: Option<&'a str>,
}

/// A JSON array.
#[derive(Clone, Default)]
pub struct List<'a> {
    pub items: Vec<Node<'a>>,
    /// The array as received, while unchanged.
    pub raw: Option<&'a str>,
}

impl<'a> Node<'a> {
    /// The first byte of the value's JSON: `{`, `[`, `"`, `n`, `t`, `f`, or a number's first byte.
    pub fn kind(&self) -> u8 {
        match self {
            Node::Raw(raw) => raw.as_bytes()[0],
            Node::Obj(_) => b'{',
            Node::List(_) => b'[',
            Node::Str(_) => b'"',
        }
    }

    /// The object this value is, to change (it forgets its received bytes); None when it is not an object.
    pub fn obj_mut(&mut self) -> Option<&mut Obj<'a>> {
        match self {
            Node::Obj(obj) => {
                obj.raw = None;
                Some(obj)
            }
            _ => None,
        }
    }

    /// The array this value is, to change (it forgets its received bytes); None when it is not an array.
    pub fn list_mut(&mut self) -> Option<&mut List<'a>> {
        match self {
            Node::List(list) => {
                list.raw = None;
                Some(list)
            }
            _ => None,
        }
    }

    /// The bytes this value was received as, while it is unchanged.
    pub fn received(&self) -> Option<&'a str> {
        match self {
            Node::Raw(raw) => Some(raw),
            Node::Obj(obj) => obj.raw,
            Node::List(list) => list.raw,
            Node::Str(_) => None,
        }
    }

    /// Marks a container as unchanged again, as received as `raw` (what `received` said before changing it).
    pub fn restore(&mut self, raw: Option<&'a str>) {
        match self {
            Node::Obj(obj) => obj.raw = raw,
            Node::List(list) => list.raw = raw,
            _ => {}
        }
    }
}

impl<'a> Obj<'a> {
    pub fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node<'a>> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub fn remove(&mut self, key: &str) -> Option<Node<'a>> {
        let index = self.position(key)?;
        Some(self.entries.remove(index).1)
    }

    /// `obj[key] = value` as a Python dict does it: in place when the key is there, else at the end.
    pub fn set(&mut self, key: Key<'a>, value: Node<'a>) {
        match self.position(&key) {
            Some(index) => self.entries[index].1 = value,
            None => self.entries.push((key, value)),
        }
    }
}

/// `text` (one JSON value, surrounding whitespace allowed) read whole, each container opened or kept as received
/// as `guide` says: given the guide value of a container and a member's key (None for an array's items), the guide
/// value of that member, or None to keep it (whatever it is) as the bytes it came as (`Node::Raw`).
pub fn parse<'a, G: Copy>(
    text: &'a str,
    root: G,
    guide: &impl Fn(G, Option<&str>) -> Option<G>,
) -> R<Node<'a>> {
    let mut reader = Reader {
        jiter: Jiter::new(text.as_bytes()),
        text,
        guide,
        at: PhantomData,
    };
    let peek = reader.jiter.peek()?;
    let node = reader.value(peek, root, 0)?;
    reader.jiter.finish()?;
    Ok(node)
}

struct Reader<'a, 'g, G, F> {
    jiter: Jiter<'a>,
    text: &'a str,
    guide: &'g F,
    at: PhantomData<G>,
}

impl<'a, G: Copy, F: Fn(G, Option<&str>) -> Option<G>> Reader<'a, '_, G, F> {
    fn value(&mut self, peek: Peek, at: G, depth: usize) -> R<Node<'a>> {
        if depth > MAX_DEPTH {
            return Err(Fallback);
        }
        let start = self.jiter.current_index();
        match peek {
            Peek::Object => {
                let mut entries = Vec::new();
                let mut key = self.jiter.known_object()?.map(|k| borrowed(k, self.text));
                while let Some(k) = key {
                    let peek = self.jiter.peek()?;
                    let value = match (self.guide)(at, Some(&k)) {
                        Some(inner) => self.value(peek, inner, depth + 1)?,
                        None => self.skip(peek)?,
                    };
                    entries.push((k, value));
                    key = self.jiter.next_key()?.map(|k| borrowed(k, self.text));
                }
                if has_repeated_key(&entries) {
                    // Python keeps the last value of a repeated key at the first one's place; rather than mirror
                    // that, the (never seen in practice) case goes to the Python path.
                    return Err(Fallback);
                }
                Ok(Node::Obj(Obj {
                    entries,
                    raw: Some(self.since(start)?),
                }))
            }
            Peek::Array => {
                let mut items = Vec::new();
                let inner = (self.guide)(at, None);
                let mut next = self.jiter.known_array()?;
                while let Some(peek) = next {
                    items.push(match inner {
                        Some(inner) => self.value(peek, inner, depth + 1)?,
                        None => self.skip(peek)?,
                    });
                    next = self.jiter.array_step()?;
                }
                Ok(Node::List(List {
                    items,
                    raw: Some(self.since(start)?),
                }))
            }
            _ => self.skip(peek),
        }
    }

    fn skip(&mut self, peek: Peek) -> R<Node<'a>> {
        let start = self.jiter.current_index();
        self.jiter.known_skip(peek)?;
        Ok(Node::Raw(self.since(start)?))
    }

    fn since(&self, start: usize) -> R<&'a str> {
        self.text
            .get(start..self.jiter.current_index())
            .ok_or(Fallback)
    }
}

/// A key as a slice of `text` when jiter read it from there (it had no escapes), else a copy of the decoded key.
fn borrowed<'a>(key: &str, text: &'a str) -> Key<'a> {
    let offset = (key.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    match text.get(offset..offset.wrapping_add(key.len())) {
        Some(slice) if slice.as_ptr() == key.as_ptr() => Cow::Borrowed(slice),
        _ => Cow::Owned(key.to_owned()),
    }
}

fn has_repeated_key(entries: &[(Key<'_>, Node<'_>)]) -> bool {
    let n = entries.len();
    if n <= 16 {
        (1..n).any(|i| entries[..i].iter().any(|(k, _)| *k == entries[i].0))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(n);
        !entries.iter().all(|(k, _)| seen.insert(k.as_ref()))
    }
}

/// The string a JSON value is; None when it is not a string.
pub fn string<'a>(node: &Node<'a>) -> R<Option<Cow<'a, str>>> {
    match node {
        Node::Raw(raw) if raw.as_bytes()[0] == b'"' => {
            let inner = raw.get(1..raw.len() - 1).ok_or(Fallback)?;
            if !inner.contains('\\') {
                return Ok(Some(Cow::Borrowed(inner)));
            }
            let mut jiter = Jiter::new(raw.as_bytes());
            Ok(Some(Cow::Owned(jiter.next_str()?.to_owned())))
        }
        Node::Str(text) => Ok(Some(Cow::Owned(text.clone()))),
        _ => Ok(None),
    }
}

/// Appends the compact JSON of `node`; what is unchanged is copied as it came.
pub fn write(node: &Node<'_>, out: &mut Vec<u8>) {
    if let Some(raw) = node.received() {
        out.extend_from_slice(raw.as_bytes());
        return;
    }
    match node {
        Node::Obj(obj) => {
            out.push(b'{');
            for (index, (key, value)) in obj.entries.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(key, out);
                out.push(b':');
                write(value, out);
            }
            out.push(b'}');
        }
        Node::List(list) => {
            out.push(b'[');
            for (index, item) in list.items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Node::Str(text) => write_str(text, out),
        Node::Raw(_) => unreachable!("a raw value is always received"),
    }
}

/// Appends `text` as a JSON string.
pub fn write_str(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{byte:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
