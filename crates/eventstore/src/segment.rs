//! How the stores keep the tree's lowest levels: in segments of up to
//! [`WIDTH`] leaves, not a row a node.
//!
//! A segment is one row holding consecutive leaves of one aligned run of
//! [`WIDTH`] (a tile): each leaf's hash (the level-0 node) and its event's
//! global position, with the place in the global order of its first leaf.
//! The nodes of levels 1 to [`LEVELS`] − 1 lie inside one tile and are
//! hashed from its leaves when a proof asks for them; the nodes from level
//! [`LEVELS`] up are stored a row each, as before. A catch-up of 5,000
//! events writes some 320 segments and 620 nodes instead of 5,000 leaf rows
//! and 10,000 node rows: the rows were most of the tree's cost
//! (docs/adr/0008-signed-checkpoints-and-seals.md).
//!
//! An extension splits its leaves at multiples of [`WIDTH`], so a tile may
//! be kept in several segments (one for each catch-up that reached into it)
//! and a segment never crosses a tile.

use std::collections::{BTreeMap, BTreeSet};

use crate::merkle::{self, NodeId};
use crate::tree::TreeExtension;
use crate::{Checkpoint, Error, Hash};

/// The levels a segment's tile spans: nodes below this level are hashed
/// from the leaves, nodes at it and above are stored.
pub(crate) const LEVELS: u8 = merkle::STORED_LEVEL;
/// Leaves in a tile, and at most in a segment.
pub(crate) const WIDTH: u64 = 1 << LEVELS;

/// Consecutive leaves of one tile, as a store keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub first_leaf: u64,
    /// The first leaf's place in the global order.
    pub first: Checkpoint,
    /// Each leaf's event's global position.
    pub positions: Vec<u64>,
    /// Each leaf's hash (the level-0 node).
    pub hashes: Vec<Hash>,
}

impl Segment {
    /// The positions column: eight big-endian bytes each.
    pub fn positions_bytes(&self) -> Vec<u8> {
        self.positions
            .iter()
            .flat_map(|p| p.to_be_bytes())
            .collect()
    }

    /// The hashes column: 32 bytes each.
    pub fn hashes_bytes(&self) -> Vec<u8> {
        self.hashes.iter().flat_map(|h| h.0).collect()
    }

    /// A segment as read back from its columns.
    pub fn from_columns(
        first_leaf: u64,
        first: Checkpoint,
        positions: &[u8],
        hashes: &[u8],
    ) -> Result<Segment, Error> {
        let damaged = || {
            Error::Internal(format!(
                "the stored tree's segment at leaf {first_leaf} is damaged: its positions and \
                 hashes do not match"
            ))
        };
        if positions.is_empty()
            || !positions.len().is_multiple_of(8)
            || hashes.len() != positions.len() * 4
        {
            return Err(damaged());
        }
        let positions: Vec<u64> = positions
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("eight bytes")))
            .collect();
        let hashes = hashes
            .chunks_exact(32)
            .map(|b| Hash::from_slice(b).ok_or_else(damaged))
            .collect::<Result<_, _>>()?;
        let segment = Segment {
            first_leaf,
            first,
            positions,
            hashes,
        };
        if first_leaf % WIDTH + segment.positions.len() as u64 > WIDTH {
            return Err(damaged());
        }
        Ok(segment)
    }

    /// The leaf index of the event at `position`, if it is in this segment.
    pub fn leaf_of(&self, position: u64) -> Option<u64> {
        self.positions
            .iter()
            .position(|p| *p == position)
            .map(|i| self.first_leaf + i as u64)
    }
}

/// The rows an extension adds.
#[derive(Debug)]
pub(crate) struct Rows {
    /// Its leaves.
    pub segments: Vec<Segment>,
    /// The nodes it completes from level [`LEVELS`] up.
    pub nodes: Vec<(NodeId, Hash)>,
}

/// What an extension stores.
pub(crate) fn split(extension: &TreeExtension) -> Result<Rows, Error> {
    let leaves: Vec<Hash> = extension
        .nodes
        .iter()
        .filter(|(id, _)| id.level == 0)
        .map(|(_, h)| *h)
        .collect();
    if leaves.len() != extension.leaves.len() {
        return Err(Error::Internal(format!(
            "a tree extension of {} leaves carries {} leaf hashes",
            extension.leaves.len(),
            leaves.len()
        )));
    }
    let mut segments: Vec<Segment> = Vec::new();
    for (i, (leaf, hash)) in extension.leaves.iter().zip(leaves).enumerate() {
        let index = extension.from_size + i as u64;
        match segments.last_mut() {
            Some(segment) if !index.is_multiple_of(WIDTH) => {
                segment.positions.push(leaf.global_position);
                segment.hashes.push(hash);
            }
            _ => segments.push(Segment {
                first_leaf: index,
                first: leaf.checkpoint,
                positions: vec![leaf.global_position],
                hashes: vec![hash],
            }),
        }
    }
    let nodes = extension
        .nodes
        .iter()
        .filter(|(id, _)| id.level >= LEVELS)
        .copied()
        .collect();
    Ok(Rows { segments, nodes })
}

/// The tiles whose segments the nodes of `ids` below [`LEVELS`] lie in.
pub(crate) fn tiles(ids: &[NodeId]) -> Vec<u64> {
    let tiles: BTreeSet<u64> = ids
        .iter()
        .filter(|id| id.level < LEVELS)
        .map(|id| (id.index << id.level) / WIDTH)
        .collect();
    tiles.into_iter().collect()
}

/// The nodes of `ids` from level [`LEVELS`] up, the ones kept a row each.
pub(crate) fn stored(ids: &[NodeId]) -> Vec<NodeId> {
    ids.iter()
        .filter(|id| id.level >= LEVELS)
        .copied()
        .collect()
}

/// Answers `ids` in order: the stored ones from `stored` (the answers for
/// [`stored`]`(ids)`, in its order), the others hashed from the leaves of
/// `segments`; `None` for a node whose leaves are not all kept.
pub(crate) fn answer(
    ids: &[NodeId],
    stored: Vec<Option<Hash>>,
    segments: &[Segment],
) -> Vec<Option<Hash>> {
    let leaves: BTreeMap<u64, Hash> = segments
        .iter()
        .flat_map(|s| (s.first_leaf..).zip(s.hashes.iter().copied()))
        .collect();
    let mut stored = stored.into_iter();
    ids.iter()
        .map(|id| {
            if id.level >= LEVELS {
                return stored.next().flatten();
            }
            let first = id.index << id.level;
            let mut level: Vec<Hash> = (first..first + (1u64 << id.level))
                .map(|leaf| leaves.get(&leaf).copied())
                .collect::<Option<_>>()?;
            while level.len() > 1 {
                level = level
                    .chunks_exact(2)
                    .map(|pair| merkle::node_hash(&pair[0], &pair[1]))
                    .collect();
            }
            level.pop()
        })
        .collect()
}

/// The leaves `from .. from + max` that `segments` (those around that
/// range, in order) hold: `(leaf index, global position, leaf hash)`.
pub(crate) fn leaf_range(segments: &[Segment], from: u64, max: usize) -> Vec<(u64, u64, Hash)> {
    let end = from.saturating_add(max as u64);
    segments
        .iter()
        .flat_map(|s| {
            (s.first_leaf..)
                .zip(s.positions.iter().copied().zip(s.hashes.iter().copied()))
                .map(|(leaf, (position, hash))| (leaf, position, hash))
        })
        .filter(|(leaf, _, _)| (from..end).contains(leaf))
        .collect()
}

/// The first leaf a segment holding any of the leaves from `from` on can
/// start at.
pub(crate) fn first_start(from: u64) -> u64 {
    from.saturating_sub(WIDTH - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::Frontier;
    use crate::tree::Leaf;

    fn leaf(i: u64) -> Leaf {
        Leaf {
            checkpoint: Checkpoint {
                tx: 100 + i,
                position: 10 * i,
            },
            global_position: 10 * i,
            hash: Hash([i as u8; 32]),
        }
    }

    /// The extension a builder makes for leaves `from .. to` of a tree.
    fn extend(frontier: &mut Frontier, from: u64, to: u64) -> TreeExtension {
        let leaves: Vec<Leaf> = (from..to).map(leaf).collect();
        let nodes = leaves.iter().flat_map(|l| frontier.push(&l.hash)).collect();
        TreeExtension {
            from_size: from,
            leaves,
            nodes,
            read: Checkpoint::START,
        }
    }

    #[test]
    fn an_extension_splits_its_leaves_at_every_tile_and_keeps_the_nodes_from_level_four_up() {
        let mut frontier = Frontier::new();
        extend(&mut frontier, 0, 5);
        let extension = extend(&mut frontier, 5, 40);
        let Rows { segments, nodes } = split(&extension).unwrap();
        let spans: Vec<(u64, u64)> = segments
            .iter()
            .map(|s| (s.first_leaf, s.first_leaf + s.positions.len() as u64))
            .collect();
        assert_eq!(spans, [(5, 16), (16, 32), (32, 40)]);
        assert_eq!(segments[1].first, leaf(16).checkpoint);
        assert_eq!(
            segments[2].positions,
            (32..40).map(|i| 10 * i).collect::<Vec<_>>()
        );
        assert_eq!(segments[0].hashes[0], merkle::leaf_hash(&leaf(5).hash));
        let ids: Vec<NodeId> = nodes.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            [
                NodeId { level: 4, index: 0 },
                NodeId { level: 4, index: 1 },
                NodeId { level: 5, index: 0 },
            ]
        );
    }

    #[test]
    fn nodes_below_level_four_are_hashed_from_the_segments_as_the_frontier_made_them() {
        let mut frontier = Frontier::new();
        let mut all = Vec::new();
        let mut segments = Vec::new();
        let mut stored = BTreeMap::new();
        for (from, to) in [(0, 3), (3, 21), (21, 40)] {
            let extension = extend(&mut frontier, from, to);
            all.extend(extension.nodes.clone());
            let rows = split(&extension).unwrap();
            segments.extend(rows.segments);
            stored.extend(rows.nodes);
        }
        let ids: Vec<NodeId> = all.iter().map(|(id, _)| *id).collect();
        let upper = super::stored(&ids)
            .iter()
            .map(|id| stored.get(id).copied())
            .collect();
        let answers = answer(&ids, upper, &segments);
        let expected: Vec<Option<Hash>> = all.iter().map(|(_, h)| Some(*h)).collect();
        assert_eq!(answers, expected);
        // A node over leaves not all kept is not answered.
        let beyond = [NodeId { level: 3, index: 5 }];
        assert_eq!(answer(&beyond, vec![], &segments), [None]);
        assert_eq!(tiles(&beyond), [2]);
    }

    #[test]
    fn a_segment_reads_back_from_its_columns_and_a_damaged_one_is_refused() {
        let mut frontier = Frontier::new();
        let segments = split(&extend(&mut frontier, 0, 7)).unwrap().segments;
        let s = &segments[0];
        let back =
            Segment::from_columns(0, s.first, &s.positions_bytes(), &s.hashes_bytes()).unwrap();
        assert_eq!(&back, s);
        assert_eq!(back.leaf_of(30), Some(3));
        assert_eq!(back.leaf_of(31), None);
        let short = &s.hashes_bytes()[..100];
        assert!(Segment::from_columns(0, s.first, &s.positions_bytes(), short).is_err());
        // Seven leaves cannot start at the tile's last place.
        let err = Segment::from_columns(15, s.first, &s.positions_bytes(), &s.hashes_bytes());
        assert!(err.is_err());
        assert_eq!(leaf_range(&segments, 5, 10).len(), 2);
        assert_eq!(first_start(20), 5);
    }
}
