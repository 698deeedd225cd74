//! The conversion down (hub → v1alpha1) of one kind, on a `Node` tree: what `kpack_core.apis.downplan` compiles
//! into Python, from the same tables (the moves, and the v1alpha1 model's field shapes).
//!
//! In order: a move target already in the object ends the plan; each move source is taken out, and the objects a
//! take empties go too; the object is cut down to what the model has a home for, recording what that loses in the
//! object's order (a list of model objects that lost something inside counts as a whole); a loss at, on the way to
//! or inside a move path ends the plan; the taken values are written at their targets, each cut down to the
//! target field's model (a loss there ends the plan). Ending the plan is a `Fallback`: the Python path's exact
//! conversion answers.

use std::borrow::Cow;

use crate::json::{Fallback, Key, Node, Obj, R};

pub type Path = Vec<String>;

/// A field's (nested model, list item model), as shape indexes.
pub type FieldShapes = (Option<usize>, Option<usize>);

/// The fields of one model by JSON name.
pub struct Shape {
    pub fields: Vec<(String, FieldShapes)>,
}

impl Shape {
    fn field(&self, key: &str) -> Option<FieldShapes> {
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, shapes)| *shapes)
    }
}

/// What a conversion lost: each value with its path, in the object's order.
pub type Dropped<'a> = Vec<(Vec<Key<'a>>, Node<'a>)>;

pub struct Plan {
    moves: Vec<(Path, Path)>,
    /// The model shapes; the first is the top-level model's.
    shapes: Vec<Shape>,
    /// Per move, its target field's shapes; None when the model has no home for the target.
    targets: Vec<Option<FieldShapes>>,
    /// Every move path and every path on the way to one: a loss there is next to a move.
    near: Vec<Path>,
    /// Every move path: a loss inside one is next to a move.
    ends: Vec<Path>,
}

impl Plan {
    /// A plan for `moves` ((hub path, v1alpha1 path) pairs) into the model `shapes[0]`. Refuses what the Python
    /// compiler refuses (which answers those kinds by its exact path): a move through `metadata`, a model without
    /// `metadata`, a move path at or inside another, an empty path, a shape index out of range.
    pub fn new(moves: Vec<(Path, Path)>, shapes: Vec<Shape>) -> Result<Plan, String> {
        let count = shapes.len();
        let valid = |index: &Option<usize>| index.is_none_or(|i| i < count);
        if shapes
            .iter()
            .any(|s| s.fields.iter().any(|(_, (n, i))| !valid(n) || !valid(i)))
        {
            return Err("a field names a shape that is not in the table".into());
        }
        if count == 0 || shapes[0].field("metadata") != Some((None, None)) {
            return Err("the top-level model has no metadata field, or one with a model".into());
        }
        let ends: Vec<Path> = moves
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        if ends
            .iter()
            .any(|path| path.is_empty() || path[0] == "metadata")
        {
            return Err("a move path is empty or goes through metadata".into());
        }
        for (i, a) in ends.iter().enumerate() {
            for b in &ends[i + 1..] {
                let n = a.len().min(b.len());
                if a[..n] == b[..n] {
                    return Err(format!("move paths {a:?} and {b:?} overlap"));
                }
            }
        }
        let mut near: Vec<Path> = Vec::new();
        for path in &ends {
            for n in 1..=path.len() {
                if !near.iter().any(|p| p[..] == path[..n]) {
                    near.push(path[..n].to_vec());
                }
            }
        }
        let targets = moves
            .iter()
            .map(|(_, target)| target_field(&shapes, target))
            .collect();
        Ok(Plan {
            moves,
            shapes,
            targets,
            near,
            ends,
        })
    }

    /// The v1alpha1 body of `hub` without its `metadata`, what it lost, and the `metadata` (which no move goes
    /// through, and which the model keeps whole); `Fallback` where the exact path must answer.
    pub fn run<'a>(&'a self, mut top: Obj<'a>) -> R<(Obj<'a>, Dropped<'a>, Option<Node<'a>>)> {
        top.raw = None; // its apiVersion changes
        let metadata = top.remove("metadata");
        for (_, target) in &self.moves {
            if exists(&top, target)? {
                return Err(Fallback);
            }
        }
        let mut taken: Vec<Option<Node<'a>>> = Vec::with_capacity(self.moves.len());
        for (source, _) in &self.moves {
            taken.push(take(&mut top, source)?);
        }
        let mut dropped: Dropped<'a> = Vec::new();
        self.keep(&mut top, 0, &mut Vec::new(), Some(&mut dropped))?;
        for (path, _) in &dropped {
            if self.near.iter().any(|p| same(p, path)) {
                return Err(Fallback);
            }
            if self
                .ends
                .iter()
                .any(|end| path.len() > end.len() && same(end, &path[..end.len()]))
            {
                return Err(Fallback);
            }
        }
        for ((value, (_, target)), field) in taken.into_iter().zip(&self.moves).zip(&self.targets) {
            let Some(mut value) = value else { continue };
            let (nested, item) = field.ok_or(Fallback)?;
            if self.keep_value(&mut value, nested, item)? {
                return Err(Fallback);
            }
            set_at(&mut top, target, value)?;
        }
        Ok((top, dropped, metadata))
    }

    /// Cuts `obj` down to the fields of `shapes[shape]`, recursively; records each loss in `dropped` when given.
    /// Whether anything was lost.
    fn keep<'a>(
        &'a self,
        obj: &mut Obj<'a>,
        shape: usize,
        path: &mut Vec<Key<'a>>,
        mut dropped: Option<&mut Dropped<'a>>,
    ) -> R<bool> {
        let mut lost = false;
        let mut index = 0;
        while index < obj.entries.len() {
            let Some((nested, item)) = self.shapes[shape].field(&obj.entries[index].0) else {
                let (key, value) = obj.entries.remove(index);
                lost = true;
                if let Some(dropped) = dropped.as_deref_mut() {
                    let mut at = path.clone();
                    at.push(key);
                    dropped.push((at, value));
                }
                continue;
            };
            let (key, value) = &mut obj.entries[index];
            let kind = value.kind();
            let saved = value.received();
            if let (Some(nested), b'{') = (nested, kind) {
                path.push(key.clone());
                let inner = value.obj_mut().ok_or(Fallback)?;
                let lost_inside = self.keep(inner, nested, path, dropped.as_deref_mut())?;
                path.pop();
                if lost_inside {
                    lost = true;
                } else {
                    value.restore(saved); // unchanged: written back as received
                }
            } else if let (Some(item), b'[') = (item, kind) {
                let original = match saved {
                    Some(raw) => Node::Raw(raw),
                    None => value.clone(),
                };
                if self.keep_items(value, item)? {
                    lost = true;
                    if let Some(dropped) = dropped.as_deref_mut() {
                        let mut at = path.clone();
                        at.push(key.clone());
                        dropped.push((at, original));
                    }
                } else {
                    value.restore(saved);
                }
            }
            index += 1;
        }
        Ok(lost)
    }

    /// Cuts each model object in the array `list` down to the item model; whether any lost something.
    fn keep_items<'a>(&'a self, list: &mut Node<'a>, item: usize) -> R<bool> {
        let mut lost = false;
        for x in &mut list.list_mut().ok_or(Fallback)?.items {
            let saved = x.received();
            if let Some(inner) = x.obj_mut() {
                if self.keep(inner, item, &mut Vec::new(), None)? {
                    lost = true;
                } else {
                    x.restore(saved);
                }
            }
        }
        Ok(lost)
    }

    /// What `keep` keeps of one field's value, given the field's shapes; whether anything was lost.
    fn keep_value<'a>(
        &'a self,
        value: &mut Node<'a>,
        nested: Option<usize>,
        item: Option<usize>,
    ) -> R<bool> {
        let kind = value.kind();
        if let (Some(nested), b'{') = (nested, kind) {
            let inner = value.obj_mut().ok_or(Fallback)?;
            return self.keep(inner, nested, &mut Vec::new(), None);
        }
        if let (Some(item), b'[') = (item, kind) {
            return self.keep_items(value, item);
        }
        Ok(false)
    }
}

/// The target field's shapes, as `downplan._target` finds them: through the nested models of the parents; a
/// parent kept whole (no model) holds anything; None when a model on the way, or the last one, lacks the field.
fn target_field(shapes: &[Shape], path: &Path) -> Option<FieldShapes> {
    let (key, parents) = path.split_last()?;
    let mut shape = Some(0);
    for parent in parents {
        let Some(current) = shape else { break };
        shape = shapes[current].field(parent)?.0;
    }
    match shape {
        None => Some((None, None)),
        Some(current) => shapes[current].field(key),
    }
}

fn same(a: &[String], b: &[Key<'_>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether `path` is in `obj`, through objects only.
fn exists(obj: &Obj<'_>, path: &[String]) -> R<bool> {
    let (last, parents) = path.split_last().ok_or(Fallback)?;
    let mut node = obj;
    for key in parents {
        match node.get(key) {
            Some(Node::Obj(inner)) => node = inner,
            _ => return Ok(false),
        }
    }
    Ok(node.contains(last))
}

/// Takes the value at `path` out of `obj` (through objects only); an object the take empties goes too.
fn take<'a>(obj: &mut Obj<'a>, path: &[String]) -> R<Option<Node<'a>>> {
    let (first, rest) = path.split_first().ok_or(Fallback)?;
    if rest.is_empty() {
        return Ok(obj.remove(first));
    }
    let Some(index) = obj.position(first) else {
        return Ok(None);
    };
    let node = &mut obj.entries[index].1;
    let saved = node.received();
    let Some(child) = node.obj_mut() else {
        return Ok(None);
    };
    let Some(taken) = take(child, rest)? else {
        node.restore(saved);
        return Ok(None);
    };
    if child.entries.is_empty() {
        obj.entries.remove(index);
    }
    Ok(Some(taken))
}

/// Writes `value` at `path`, making objects on the way (in place of any non-object value there).
fn set_at<'a>(obj: &mut Obj<'a>, path: &'a [String], value: Node<'a>) -> R<()> {
    let (first, rest) = path.split_first().ok_or(Fallback)?;
    if rest.is_empty() {
        obj.set(Cow::Borrowed(first), value);
        return Ok(());
    }
    let index = match obj.position(first) {
        Some(index) => {
            if obj.entries[index].1.kind() != b'{' {
                obj.entries[index].1 = Node::Obj(Obj::default());
            }
            index
        }
        None => {
            obj.entries
                .push((Cow::Borrowed(first), Node::Obj(Obj::default())));
            obj.entries.len() - 1
        }
    };
    let child = obj.entries[index].1.obj_mut().ok_or(Fallback)?;
    set_at(child, rest, value)
}
