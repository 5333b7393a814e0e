//! A Merkle tree over the whole log, in the style of RFC 9162 (Certificate
//! Transparency 2.0): leaf `i` is the `i`-th event in global order, its data
//! the event's chain hash.
//!
//! - leaf hash: `SHA-256(0x00 ‖ event hash)`;
//! - node hash: `SHA-256(0x01 ‖ left ‖ right)`, the two prefixes keeping a
//!   leaf from ever passing for a node;
//! - the root of `n` leaves splits them at the largest power of two below
//!   `n` (RFC 9162 §2.1.1), and the empty tree's root is `SHA-256("")`.
//!
//! A signed checkpoint commits to the tree at one size; every later tree
//! must contain it unchanged ([`verify_consistency`]), and any event it
//! holds can be shown to be in it with a few hashes ([`verify_inclusion`]).
//!
//! Stored nodes: a store gives the hash of every complete, aligned subtree
//! (`level` 0 being the leaves; node `(level, index)` covers leaves
//! `index·2^level .. (index+1)·2^level`), keeping the leaves in segments and
//! the nodes from level 4 up, and hashing the ones between from the leaves
//! (`crate::segment`). Every range hash a proof needs is built from those
//! ([`range_hash`]). Verifiers trust none of them: they recompute from the
//! events or check proofs against a signed root.

use sha2::{Digest, Sha256};

use crate::Hash;

/// The lowest level of nodes above the leaves that a store keeps a row
/// each; the nodes below it are hashed from the leaves it keeps
/// (`crate::segment`).
pub const STORED_LEVEL: u8 = 4;

/// The hash of a leaf whose data is `event_hash`.
pub fn leaf_hash(event_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(event_hash.0);
    Hash(h.finalize().into())
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// A stored node: the hash of the complete subtree `(level, index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// The right edge of a tree as it grows: one complete subtree per set bit of
/// its size, largest first. Enough to take the root at any size and to learn
/// which nodes each new leaf completes, in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing.
    edge: Vec<(u8, Hash)>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored
    /// nodes, given in the order of [`Frontier::node_ids`].
    pub fn from_nodes(size: u64, hashes: &[Hash]) -> Option<Self> {
        let ids = Self::node_ids(size);
        (ids.len() == hashes.len()).then(|| Frontier {
            size,
            edge: ids
                .iter()
                .zip(hashes)
                .map(|(id, h)| (id.level, *h))
                .collect(),
        })
    }

    /// The stored nodes a tree of `size` leaves is made of, largest first.
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                ids.push(NodeId {
                    level,
                    index: start >> level,
                });
                start += 1u64 << level;
            }
        }
        ids
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next leaf; returns every node it completes, the leaf itself
    /// first, so a store can keep them.
    pub fn push(&mut self, event_hash: &Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut carry = leaf_hash(event_hash);
        let mut completed = vec![(NodeId { level: 0, index }, carry)];
        let mut level = 0u8;
        while let Some(&(top_level, top)) = self.edge.last() {
            if top_level != level {
                break;
            }
            self.edge.pop();
            carry = node_hash(&top, &carry);
            level += 1;
            completed.push((
                NodeId {
                    level,
                    index: index >> level,
                },
                carry,
            ));
        }
        self.edge.push((level, carry));
        self.size += 1;
        completed
    }

    /// The root of the tree as it stands.
    pub fn root(&self) -> Hash {
        let mut iter = self.edge.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `start .. end` as RFC 9162 defines it, from stored
/// complete subtrees fetched through `node`.
pub fn range_hash(start: u64, end: u64, node: &mut dyn FnMut(NodeId) -> Hash) -> Hash {
    let n = end - start;
    if n == 0 {
        return empty_root();
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros() as u8;
        return node(NodeId {
            level,
            index: start >> level,
        });
    }
    let k = split(n);
    let left = range_hash(start, start + k, node);
    let right = range_hash(start + k, end, node);
    node_hash(&left, &right)
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 9162
/// §2.1.3.1), leaf side first.
pub fn inclusion_proof(index: u64, size: u64, node: &mut dyn FnMut(NodeId) -> Hash) -> Vec<Hash> {
    fn path(
        m: u64,
        start: u64,
        end: u64,
        node: &mut dyn FnMut(NodeId) -> Hash,
        out: &mut Vec<Hash>,
    ) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, start, start + k, node, out);
            out.push(range_hash(start + k, end, node));
        } else {
            path(m - k, start + k, end, node, out);
            out.push(range_hash(start, start + k, node));
        }
    }
    let mut out = Vec::new();
    if index < size {
        path(index, 0, size, node, &mut out);
    }
    out
}

/// The proof that the tree of `old` leaves is a prefix of the tree of `new`
/// leaves (RFC 9162 §2.1.4.1).
pub fn consistency_proof(old: u64, new: u64, node: &mut dyn FnMut(NodeId) -> Hash) -> Vec<Hash> {
    fn sub(
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        node: &mut dyn FnMut(NodeId) -> Hash,
        out: &mut Vec<Hash>,
    ) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(range_hash(start, end, node));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            sub(m, start, start + k, whole, node, out);
            out.push(range_hash(start + k, end, node));
        } else {
            sub(m - k, start + k, end, false, node, out);
            out.push(range_hash(start, start + k, node));
        }
    }
    let mut out = Vec::new();
    if 0 < old && old < new {
        sub(old, 0, new, true, node, &mut out);
    }
    out
}

/// Every stored node a proof over a tree of `size` leaves would read, for
/// fetching them in one query before building it. `build` runs the proof
/// with a node source; the hashes it gets are placeholders.
pub fn nodes_needed<T>(build: impl FnOnce(&mut dyn FnMut(NodeId) -> Hash) -> T) -> Vec<NodeId> {
    let mut ids = Vec::new();
    let mut record = |id: NodeId| {
        ids.push(id);
        Hash::GENESIS
    };
    build(&mut record);
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Checks an audit path: that the leaf with `leaf` hash sits at `index` in
/// the tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    root_from_inclusion(index, size, leaf, proof.iter().copied()).is_some_and(|r| r == *root)
}

/// The root an audit path leads to from the leaf with `leaf` hash at
/// `index` in a tree of `size` leaves; `None` when the path cannot belong
/// to that place (too short, too long, or the index outside the tree).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: impl IntoIterator<Item = Hash>,
) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(&p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// Checks a consistency proof between the tree of `old` leaves with root
/// `old_root` and the tree of `new` leaves with root `new_root` (RFC 9162
/// §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn event(i: u64) -> Hash {
        Hash(Sha256::digest(i.to_be_bytes()).into())
    }

    /// RFC 9162's definition, written out naively.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn build(n: u64) -> (Vec<Hash>, HashMap<NodeId, Hash>, Vec<Hash>) {
        let mut frontier = Frontier::new();
        let mut nodes = HashMap::new();
        let mut roots = vec![frontier.root()];
        let mut events = Vec::new();
        for i in 0..n {
            events.push(event(i));
            for (id, h) in frontier.push(&event(i)) {
                assert!(nodes.insert(id, h).is_none(), "{id:?} completed twice");
            }
            roots.push(frontier.root());
        }
        (events, nodes, roots)
    }

    #[test]
    fn frontier_roots_match_the_rfc_definition_at_every_size() {
        let (events, _, roots) = build(70);
        for (n, root) in roots.iter().enumerate() {
            assert_eq!(*root, mth(&events[..n]), "size {n}");
        }
    }

    #[test]
    fn stored_nodes_are_the_complete_subtrees_and_rebuild_the_frontier() {
        let (events, nodes, roots) = build(45);
        for (id, h) in &nodes {
            let start = (id.index << id.level) as usize;
            let end = start + (1usize << id.level);
            assert_eq!(*h, mth(&events[start..end]), "{id:?}");
        }
        for n in 0..=45u64 {
            let hashes: Vec<Hash> = Frontier::node_ids(n).iter().map(|id| nodes[id]).collect();
            let frontier = Frontier::from_nodes(n, &hashes).unwrap();
            assert_eq!(frontier.root(), roots[n as usize]);
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_fail_for_any_other_leaf_index_or_root() {
        let (events, nodes, roots) = build(37);
        let mut get = |id: NodeId| nodes[&id];
        for n in 1..=37u64 {
            for m in 0..n {
                let proof = inclusion_proof(m, n, &mut get);
                let leaf = leaf_hash(&events[m as usize]);
                let root = roots[n as usize];
                assert!(verify_inclusion(m, n, &leaf, &proof, &root), "{m} in {n}");
                assert!(!verify_inclusion(
                    m,
                    n,
                    &leaf_hash(&event(99)),
                    &proof,
                    &root
                ));
                if n > 1 {
                    assert!(!verify_inclusion((m + 1) % n, n, &leaf, &proof, &root));
                    assert!(!verify_inclusion(
                        m,
                        n,
                        &leaf,
                        &proof,
                        &roots[n as usize - 1]
                    ));
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_fail_for_a_changed_prefix() {
        let (_, nodes, roots) = build(33);
        let mut get = |id: NodeId| nodes[&id];
        for new in 1..=33u64 {
            for old in 1..=new {
                let proof = consistency_proof(old, new, &mut get);
                let (o, n) = (roots[old as usize], roots[new as usize]);
                assert!(verify_consistency(old, new, &o, &n, &proof), "{old}→{new}");
                if old < new {
                    let other = roots[old as usize - 1];
                    assert!(
                        !verify_consistency(old, new, &other, &n, &proof),
                        "{old}→{new}"
                    );
                }
            }
        }
    }

    #[test]
    fn nodes_needed_lists_what_a_proof_reads() {
        let (_, nodes, _) = build(21);
        let needed = nodes_needed(|get| inclusion_proof(5, 21, get));
        let mut read = Vec::new();
        inclusion_proof(5, 21, &mut |id| {
            read.push(id);
            nodes[&id]
        });
        read.sort_unstable();
        read.dedup();
        assert_eq!(needed, read);
        assert!(!needed.is_empty());
    }
}
