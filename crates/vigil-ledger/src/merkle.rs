//! Merkle tree over the ledger's records, as specified by RFC 9162
//! (Certificate Transparency v2), §2.1, with SHA-256.
//!
//! # Hashing
//!
//! The Merkle Tree Hash (MTH) of a list of `n` leaves is defined recursively:
//!
//! * `MTH({}) = SHA-256()`, the hash of the empty string ([`EMPTY_ROOT`]);
//! * `MTH({d0}) = SHA-256(0x00 || d0)`, a *leaf hash* ([`leaf_hash`]);
//! * for `n > 1`, with `k` the largest power of two strictly less than `n`,
//!   `MTH(D[0:n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`
//!   ([`node_hash`]).
//!
//! The distinct `0x00` / `0x01` prefixes are what make the tree
//! second-preimage resistant: a leaf can never be passed off as an interior
//! node, or the reverse. The split at the largest power of two makes the tree
//! *left-balanced*: every left subtree is perfect, so appending a leaf never
//! changes the hash of any complete subtree already computed.
//!
//! In this crate a leaf's data is the record payload (the event's canonical
//! bytes), and the leaves are taken in seq order: leaf index `i` is seq `i + 1`.
//!
//! # Compact range
//!
//! Because of that left-balanced shape, the tree of size `n` decomposes into
//! one perfect subtree per set bit of `n`, largest first (for `n = 6 = 0b110`:
//! a subtree of 4 leaves, then one of 2). [`CompactTree`] keeps only the roots
//! of these subtrees, the *peaks*: `popcount(n) <= 64` hashes are enough to
//! append further leaves and to compute the root, without reading any old
//! leaf. Appending behaves like incrementing a binary counter: each carry
//! merges two equal-sized peaks into one.
//!
//! # Proofs
//!
//! [`inclusion_proof`] and [`consistency_proof`] build the RFC 9162 §2.1.3.1
//! `PATH` and §2.1.4.1 `PROOF` lists; [`verify_inclusion`] and
//! [`verify_consistency`] are the §2.1.3.2 and §2.1.4.2 verification
//! algorithms. Proof generation asks the caller for subtree hashes through a
//! closure, so that a store of precomputed subtree hashes can answer without
//! rehashing leaves; the `*_from_leaves` variants do it from a slice.
//!
//! Verification is strict about the proof's shape: the expected number of
//! hashes follows from the sizes alone, and a proof with extra or missing
//! hashes is rejected before any hashing.

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Domain-separation prefix of leaf hashes.
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes.
const NODE_PREFIX: u8 = 0x01;

/// Hash of one leaf: `SHA-256(0x00 || data)`.
///
/// Allocation-free: the prefix and the data are fed to the hasher in turn
/// rather than concatenated.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Why a Merkle operation or proof verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// An inclusion proof was asked for (or checked against) a leaf that is
    /// not in the tree: `index >= size`, which includes every index when the
    /// tree is empty.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was asked for (or checked) from a larger tree to
    /// a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeMismatch {
        /// The size of the tree that should be the older one.
        old_size: u64,
        /// The size of the tree that should be the newer one.
        new_size: u64,
    },
    /// A consistency proof from the empty tree to a non-empty one: there is
    /// no such proof (RFC 9162 defines them for `0 < old_size`), since every
    /// tree extends the empty tree. Compare the old root with [`EMPTY_ROOT`]
    /// instead.
    #[error("no consistency proof exists from the empty tree (to size {new_size}): every tree extends it")]
    EmptyOldTree {
        /// The size of the newer tree.
        new_size: u64,
    },
    /// The proof has more or fewer hashes than the tree sizes call for.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength {
        /// The number of hashes a valid proof has for these sizes.
        expected: usize,
        /// The number of hashes supplied.
        got: usize,
    },
    /// The root recomputed from a proof (or, for an empty tree, the known
    /// empty root) differs from the root the caller supplied.
    #[error("root mismatch at tree size {tree_size}: supplied {}, computed {}", hex(.expected), hex(.computed))]
    RootMismatch {
        /// The size of the tree whose root did not match.
        tree_size: u64,
        /// The root the caller supplied.
        expected: Hash,
        /// The root that the proof (or the definition) yields.
        computed: Hash,
    },
    /// Bytes given to [`CompactTree::from_bytes`] do not describe a valid
    /// state.
    #[error("invalid compact tree state: {0}")]
    BadState(String),
}

/// Lower-case hex of a hash, for error messages.
fn hex(hash: &Hash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Compact range ("Merkle frontier") of a tree: the `O(log n)` state needed
/// to append leaves and compute the root.
///
/// `peaks` holds the roots of the perfect subtrees the tree decomposes into,
/// left to right (largest first): one per set bit of `size`, the subtree for
/// bit `b` covering `2^b` leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, left to right (see the type docs).
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf, given as its [`leaf_hash`].
    ///
    /// # Panics
    ///
    /// If the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash) {
        let new_size = self
            .size
            .checked_add(1)
            .expect("Merkle tree size overflows u64");
        // Like a binary increment: each trailing one bit of the old size is a
        // peak of the same size as the subtree being carried, so they merge.
        let mut carry = leaf;
        for _ in 0..self.size.trailing_ones() {
            let left = self.peaks.pop().expect("peak count equals popcount(size)");
            carry = node_hash(&left, &carry);
        }
        self.peaks.push(carry);
        self.size = new_size;
    }

    /// The tree's root (Merkle Tree Hash); [`EMPTY_ROOT`] when empty.
    pub fn root(&self) -> Hash {
        // MTH splits off the largest power of two on the left, which is
        // exactly the first peak; the rest recurses, so fold from the right.
        let mut peaks = self.peaks.iter().rev();
        let Some(&last) = peaks.next() else {
            return EMPTY_ROOT;
        };
        peaks.fold(last, |acc, peak| node_hash(peak, &acc))
    }

    /// The peaks with the leaf ranges they cover: `(start, end, hash)`,
    /// left to right, tiling `0..size`.
    pub fn peak_ranges(&self) -> Vec<(u64, u64, Hash)> {
        let mut out = Vec::with_capacity(self.peaks.len());
        let mut start = 0u64;
        let mut peaks = self.peaks.iter();
        for bit in (0..64).rev() {
            if self.size & (1u64 << bit) != 0 {
                let end = start + (1u64 << bit);
                if let Some(h) = peaks.next() {
                    out.push((start, end, *h));
                }
                start = end;
            }
        }
        out
    }

    /// The compact range of the first `size` leaves, when `size` is a peak
    /// boundary of this tree (the sum of its first peaks' sizes); `None`
    /// otherwise, since the leaves are needed then.
    pub fn prefix(&self, size: u64) -> Option<CompactTree> {
        if size == 0 {
            return Some(CompactTree::new());
        }
        let ranges = self.peak_ranges();
        let j = ranges.iter().position(|r| r.1 == size)?;
        Some(CompactTree {
            size,
            peaks: self.peaks[..=j].to_vec(),
        })
    }

    /// Serialises the state: `size` as u64 little-endian, then the peaks,
    /// 32 bytes each, left to right.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.peaks.len());
        out.extend_from_slice(&self.size.to_le_bytes());
        for peak in &self.peaks {
            out.extend_from_slice(peak);
        }
        out
    }

    /// Parses bytes written by [`to_bytes`](Self::to_bytes).
    ///
    /// Rejects (with [`MerkleError::BadState`]) input that is shorter than
    /// 8 bytes, has a partial hash, or whose peak count is not
    /// `popcount(size)`. The peak hashes themselves cannot be checked without
    /// the leaves.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MerkleError> {
        let (size, rest) = bytes.split_first_chunk::<8>().ok_or_else(|| {
            MerkleError::BadState(format!("{} bytes, need at least 8", bytes.len()))
        })?;
        let size = u64::from_le_bytes(*size);
        if rest.len() % 32 != 0 {
            return Err(MerkleError::BadState(format!(
                "{} bytes after the size is not a whole number of 32-byte hashes",
                rest.len()
            )));
        }
        let want = size.count_ones() as usize;
        let got = rest.len() / 32;
        if got != want {
            return Err(MerkleError::BadState(format!(
                "{got} peaks for size {size}, expected {want}"
            )));
        }
        let peaks = rest
            .chunks_exact(32)
            .map(|c| c.try_into().expect("chunks are 32 bytes"))
            .collect();
        Ok(Self { size, peaks })
    }
}

/// The largest power of two strictly less than `n`; requires `n >= 2`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Merkle Tree Hash of a list of leaf hashes, by the recursive definition of
/// RFC 9162 §2.1.1. [`EMPTY_ROOT`] for an empty list.
///
/// Hashes every interior node once (`n - 1` node hashes); use [`CompactTree`]
/// to maintain a root incrementally.
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let k = split_point(leaves.len() as u64) as usize;
            node_hash(
                &root_from_leaves(&leaves[..k]),
                &root_from_leaves(&leaves[k..]),
            )
        }
    }
}

/// Adapts a slice of leaf hashes to the `subtree(start, end)` callback of the
/// proof builders.
fn slice_subtree(leaves: &[Hash]) -> impl Fn(u64, u64) -> Hash + '_ {
    // Ranges come from the builders and lie within 0..=len, so they fit usize.
    |start, end| root_from_leaves(&leaves[start as usize..end as usize])
}

/// Inclusion proof (RFC 9162 §2.1.3.1 `PATH`) of leaf `index` in the tree of
/// the first `size` leaves, ordered from the leaf's sibling up to the root's
/// child.
///
/// `subtree(start, end)` must return the Merkle Tree Hash of leaves
/// `start..end` (it is only ever asked for ranges within `0..size`, of at
/// least one leaf), so a caller can answer from stored subtree hashes.
///
/// Errors with [`MerkleError::IndexOutOfRange`] unless `index < size`.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    subtree: &dyn Fn(u64, u64) -> Hash,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // Walk down from the root to the leaf, taking the sibling subtree at each
    // split; PATH lists them bottom-up, hence the final reverse.
    let mut proof = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            proof.push(subtree(mid, hi));
            hi = mid;
        } else {
            proof.push(subtree(lo, mid));
            lo = mid;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// [`inclusion_proof`] of leaf `index` in the tree made of all of `leaves`.
pub fn inclusion_proof_from_leaves(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, MerkleError> {
    inclusion_proof(index, leaves.len() as u64, &slice_subtree(leaves))
}

/// Consistency proof (RFC 9162 §2.1.4.1 `PROOF`, built with `SUBPROOF`) that
/// the tree of the first `old_size` leaves is a prefix of the tree of the
/// first `new_size` leaves.
///
/// `subtree(start, end)` is as for [`inclusion_proof`], with ranges within
/// `0..new_size`.
///
/// The proof is empty when `old_size == new_size`. Errors with
/// [`MerkleError::SizeMismatch`] if `old_size > new_size`, and with
/// [`MerkleError::EmptyOldTree`] if `old_size == 0 < new_size`.
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    subtree: &dyn Fn(u64, u64) -> Hash,
) -> Result<Vec<Hash>, MerkleError> {
    check_consistency_sizes(old_size, new_size)?;
    let mut proof = Vec::new();
    if old_size == new_size {
        return Ok(proof);
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: `known` is b, i.e. whether the
    // verifier already has MTH(D[lo:hi]) when the recursion reaches m == n.
    // It holds only while we keep descending left from the root, where the
    // subtree ending at old_size is a prefix of the old tree.
    let (mut lo, mut hi, mut known) = (0, new_size, true);
    loop {
        let m = old_size - lo;
        let n = hi - lo;
        if m == n {
            if !known {
                proof.push(subtree(lo, hi));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(subtree(lo + k, hi));
            hi = lo + k;
        } else {
            proof.push(subtree(lo, lo + k));
            lo += k;
            known = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// [`consistency_proof`] from the tree of the first `old_size` leaves to the
/// tree made of all of `leaves`.
pub fn consistency_proof_from_leaves(
    old_size: u64,
    leaves: &[Hash],
) -> Result<Vec<Hash>, MerkleError> {
    consistency_proof(old_size, leaves.len() as u64, &slice_subtree(leaves))
}

/// The size checks shared by consistency proof generation and verification.
fn check_consistency_sizes(old_size: u64, new_size: u64) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeMismatch { old_size, new_size });
    }
    if old_size == 0 && new_size > 0 {
        return Err(MerkleError::EmptyOldTree { new_size });
    }
    Ok(())
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`
/// (requires `index < size`): one per level below the point where the paths
/// to `index` and to the last leaf diverge, then one per left sibling above.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    (inner + (index >> inner).count_ones()) as usize
}

/// Fails with [`MerkleError::RootMismatch`] unless `computed == expected`.
fn check_root(tree_size: u64, expected: &Hash, computed: Hash) -> Result<(), MerkleError> {
    if computed == *expected {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch {
            tree_size,
            expected: *expected,
            computed,
        })
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that `leaf` (a
/// [`leaf_hash`]) is at `index` in the tree of `size` leaves whose root is
/// `root`.
///
/// The proof does not authenticate `size` by itself: `size` and `root` must
/// come together from the same trusted tree head.
///
/// Errors: [`MerkleError::IndexOutOfRange`] unless `index < size`;
/// [`MerkleError::WrongProofLength`] if the proof has extra or missing hashes;
/// [`MerkleError::RootMismatch`] if the recomputed root differs.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    // The RFC algorithm verbatim (see `walk_path`).
    let mut r = *leaf;
    let fits = walk_path(index, size - 1, proof, |p, left| {
        r = if left {
            node_hash(p, &r)
        } else {
            node_hash(&r, p)
        };
    });
    if !fits {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    check_root(size, root, r)
}

/// The path walk shared by inclusion and consistency verification (RFC 9162
/// §2.1.3.2 and §2.1.4.2): `fnode` tracks the node's index at each level,
/// `snode` the index of the last node of that level. Calls `step(hash, left)`
/// for each path hash, `left` telling whether it is a left sibling. Where the
/// node is its level's last and has no right sibling, it is promoted
/// unchanged until it becomes a right child.
///
/// Returns false if the path does not fit the tree (too long, or too short):
/// callers check the length first, so this is a second line of defence that
/// keeps a mistake there from turning into accepting a bad proof.
fn walk_path(
    mut fnode: u64,
    mut snode: u64,
    path: &[Hash],
    mut step: impl FnMut(&Hash, bool),
) -> bool {
    for c in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            step(c, true);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            step(c, false);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of
/// `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`.
///
/// Edge cases:
/// * `old_size == new_size`: the proof must be empty and the roots equal
///   (and, for size 0, equal to [`EMPTY_ROOT`]);
/// * `old_size == 0 < new_size`: [`MerkleError::EmptyOldTree`], as there is
///   nothing to prove (every tree extends the empty one; a caller holding a
///   size-0 checkpoint should just check its root is [`EMPTY_ROOT`]);
/// * `old_size > new_size`: [`MerkleError::SizeMismatch`].
///
/// Otherwise fails with [`MerkleError::WrongProofLength`] if the proof has
/// extra or missing hashes, or [`MerkleError::RootMismatch`] if either
/// recomputed root differs.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    check_consistency_sizes(old_size, new_size)?;
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_size == 0 {
            // The empty tree has a fixed root; a different one is a false claim.
            check_root(0, old_root, EMPTY_ROOT)?;
        }
        return check_root(new_size, new_root, *old_root);
    }

    // Here 0 < old_size < new_size. The proof is the hash of the largest
    // perfect subtree ending at old_size (omitted when that subtree is the
    // whole old tree, i.e. old_size is a power of two: the verifier has it as
    // old_root), followed by that subtree's inclusion path in the new tree.
    let shift = old_size.trailing_zeros();
    let omitted_seed = old_size.is_power_of_two();
    let expected =
        usize::from(!omitted_seed) + inclusion_proof_len(old_size - 1, new_size) - shift as usize;
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }

    let (seed, path) = if omitted_seed {
        (old_root, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    // The RFC algorithm: `fr` rebuilds the old root from the left-hand
    // hashes only, `sr` the new root from all of them. The walk starts at
    // the level of the seed subtree.
    let (mut fr, mut sr) = (*seed, *seed);
    let fits = walk_path(
        (old_size - 1) >> shift,
        (new_size - 1) >> shift,
        path,
        |c, left| {
            if left {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
            } else {
                sr = node_hash(&sr, c);
            }
        },
    );
    if !fits {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    check_root(old_size, old_root, fr)?;
    check_root(new_size, new_root, sr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(hex: &str) -> Hash {
        assert_eq!(hex.len(), 64);
        let mut out = [0; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// The leaves of the RFC 6962 / transparency-dev reference tests.
    fn reference_leaves() -> Vec<Hash> {
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        data.iter().map(|d| leaf_hash(d)).collect()
    }

    /// Roots of the first 1..=8 reference leaves (transparency-dev testdata).
    const REFERENCE_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(root_from_leaves(&[]), EMPTY_ROOT);
        assert_eq!(CompactTree::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn hashes_are_domain_separated() {
        assert_eq!(
            leaf_hash(b""),
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        let (a, b) = ([1; 32], [2; 32]);
        let mut concat = vec![NODE_PREFIX];
        concat.extend_from_slice(&a);
        concat.extend_from_slice(&b);
        assert_eq!(node_hash(&a, &b), <[u8; 32]>::from(Sha256::digest(&concat)));
        // The same 64 bytes hashed as a leaf must not collide with the node.
        assert_ne!(node_hash(&a, &b), leaf_hash(&concat[1..]));
    }

    #[test]
    fn reference_roots() {
        let leaves = reference_leaves();
        let mut tree = CompactTree::new();
        for (n, want) in REFERENCE_ROOTS.iter().enumerate() {
            tree.append(leaves[n]);
            assert_eq!(root_from_leaves(&leaves[..=n]), h(want), "size {}", n + 1);
            assert_eq!(tree.root(), h(want), "compact, size {}", n + 1);
        }
    }

    #[test]
    fn reference_proofs() {
        // transparency-dev inclusion vectors: (leaf index, size, path).
        let leaves = reference_leaves();
        let inclusion: [(u64, usize, &[&str]); 4] = [
            (0, 1, &[]),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, path) in inclusion {
            let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
            let got = inclusion_proof_from_leaves(index, &leaves[..size]).unwrap();
            assert_eq!(got, want, "inclusion {index} in {size}");
            let root = h(REFERENCE_ROOTS[size - 1]);
            verify_inclusion(index, size as u64, &leaves[index as usize], &got, &root).unwrap();
        }
        // Consistency vectors: (old size, new size, proof).
        let consistency: [(u64, usize, &[&str]); 3] = [
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, path) in consistency {
            let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
            let got = consistency_proof_from_leaves(old, &leaves[..new]).unwrap();
            assert_eq!(got, want, "consistency {old} -> {new}");
            let (r1, r2) = (
                h(REFERENCE_ROOTS[old as usize - 1]),
                h(REFERENCE_ROOTS[new - 1]),
            );
            verify_consistency(old, new as u64, &r1, &r2, &got).unwrap();
        }
    }

    #[test]
    fn compact_tree_matches_recursive_root() {
        let leaves = leaves(300);
        let mut tree = CompactTree::new();
        for n in 0..=leaves.len() {
            assert_eq!(tree.size(), n as u64);
            assert_eq!(tree.peaks().len(), n.count_ones() as usize);
            assert_eq!(tree.root(), root_from_leaves(&leaves[..n]), "size {n}");
            if let Some(leaf) = leaves.get(n) {
                tree.append(*leaf);
            }
        }
    }

    #[test]
    fn peaks_are_the_perfect_subtree_roots() {
        let leaves = leaves(13); // 0b1101: subtrees of 8, 4 and 1 leaves
        let mut tree = CompactTree::new();
        leaves.iter().for_each(|l| tree.append(*l));
        let want = [
            root_from_leaves(&leaves[..8]),
            root_from_leaves(&leaves[8..12]),
            leaves[12],
        ];
        assert_eq!(tree.peaks(), want);
    }

    #[test]
    fn state_round_trips() {
        let leaves = leaves(300);
        let mut tree = CompactTree::new();
        for n in 0..=leaves.len() {
            let bytes = tree.to_bytes();
            assert_eq!(bytes.len(), 8 + 32 * n.count_ones() as usize);
            let back = CompactTree::from_bytes(&bytes).unwrap();
            assert_eq!(back, tree);
            assert_eq!(back.root(), tree.root());
            if let Some(leaf) = leaves.get(n) {
                tree.append(*leaf);
            }
        }
        // A restored state keeps growing like the original.
        let mut restored =
            CompactTree::from_bytes(&leaves_tree(&leaves[..100]).to_bytes()).unwrap();
        leaves[100..].iter().for_each(|l| restored.append(*l));
        assert_eq!(restored.root(), root_from_leaves(&leaves));
    }

    fn leaves_tree(leaves: &[Hash]) -> CompactTree {
        let mut tree = CompactTree::new();
        leaves.iter().for_each(|l| tree.append(*l));
        tree
    }

    #[test]
    fn bad_states_are_rejected() {
        let good = leaves_tree(&leaves(5)).to_bytes(); // 2 peaks
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("short size", good[..7].to_vec()),
            ("partial hash", good[..good.len() - 1].to_vec()),
            ("missing peak", good[..good.len() - 32].to_vec()),
            ("extra peak", [&good[..], &[0; 32]].concat()),
            (
                "size with more bits",
                [&7u64.to_le_bytes()[..], &good[8..]].concat(),
            ),
            (
                "peaks for size 0",
                [&0u64.to_le_bytes()[..], &[0; 32]].concat(),
            ),
        ];
        for (what, bytes) in bad {
            let err = CompactTree::from_bytes(&bytes).unwrap_err();
            assert!(matches!(err, MerkleError::BadState(_)), "{what}: {err:?}");
        }
        let max = [&u64::MAX.to_le_bytes()[..], &[0; 64 * 32]].concat();
        assert_eq!(CompactTree::from_bytes(&max).unwrap().peaks().len(), 64);
    }

    #[test]
    fn edge_cases() {
        let l = leaves(4);
        let root = root_from_leaves(&l);
        assert_eq!(
            inclusion_proof_from_leaves(0, &[]),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert!(matches!(
            inclusion_proof_from_leaves(4, &l),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            verify_inclusion(0, 0, &l[0], &[], &EMPTY_ROOT),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            verify_inclusion(4, 4, &l[0], &[], &root),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        // Single-leaf tree: the root is the leaf and the proof is empty.
        verify_inclusion(0, 1, &l[0], &[], &l[0]).unwrap();

        assert!(matches!(
            consistency_proof_from_leaves(5, &l),
            Err(MerkleError::SizeMismatch { .. })
        ));
        assert!(matches!(
            consistency_proof_from_leaves(0, &l),
            Err(MerkleError::EmptyOldTree { new_size: 4 })
        ));
        assert_eq!(consistency_proof_from_leaves(4, &l), Ok(vec![]));
        assert_eq!(consistency_proof_from_leaves(0, &[]), Ok(vec![]));

        verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]).unwrap();
        verify_consistency(4, 4, &root, &root, &[]).unwrap();
        assert!(verify_consistency(0, 0, &root, &root, &[]).is_err());
        assert!(verify_consistency(4, 4, &root, &l[0], &[]).is_err());
        assert!(verify_consistency(4, 4, &root, &root, &[root]).is_err());
        assert!(verify_consistency(0, 4, &EMPTY_ROOT, &root, &[]).is_err());
        assert!(verify_consistency(5, 4, &root, &root, &[]).is_err());
    }

    #[test]
    fn error_messages_are_readable() {
        let err = verify_inclusion(0, 1, &[0; 32], &[], &[0xab; 32]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "root mismatch at tree size 1: supplied {}, computed {}",
                "ab".repeat(32),
                "00".repeat(32)
            )
        );
        let err = verify_inclusion(0, 2, &[0; 32], &[], &[0; 32]).unwrap_err();
        assert_eq!(err.to_string(), "proof has 0 hashes, expected 1");
    }

    /// Every single-bit flip of `hashes`, one at a time.
    fn each_bit_flip(hashes: &[Hash], mut check: impl FnMut(&[Hash])) {
        let mut copy = hashes.to_vec();
        for i in 0..copy.len() {
            for bit in 0..256 {
                copy[i][bit / 8] ^= 1 << (bit % 8);
                check(&copy);
                copy[i][bit / 8] ^= 1 << (bit % 8);
            }
        }
    }

    /// The ways to make a proof longer or shorter by one hash.
    fn length_changes(proof: &[Hash], extra: Hash) -> Vec<Vec<Hash>> {
        let mut out = vec![[proof, &[extra]].concat(), [&[extra], proof].concat()];
        if !proof.is_empty() {
            out.push(proof[..proof.len() - 1].to_vec());
            out.push(proof[1..].to_vec());
        }
        out
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
        (1u64..=2000).prop_flat_map(|size| (Just(size), 0..size))
    }

    fn old_and_new_size() -> impl Strategy<Value = (u64, u64)> {
        (2u64..=2000).prop_flat_map(|new| (1..new, Just(new)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn inclusion_proofs_verify_and_tampering_fails((size, index) in size_and_index()) {
            let leaves = leaves(size);
            let root = root_from_leaves(&leaves);
            let leaf = leaves[index as usize];
            let proof = inclusion_proof_from_leaves(index, &leaves).unwrap();
            prop_assert_eq!(proof.len(), inclusion_proof_len(index, size));
            prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));

            each_bit_flip(&proof, |bad| {
                assert!(verify_inclusion(index, size, &leaf, bad, &root).is_err());
            });
            for bit in 0..256 {
                prop_assert!(verify_inclusion(index, size, &flip(&leaf, bit), &proof, &root).is_err());
                prop_assert!(verify_inclusion(index, size, &leaf, &proof, &flip(&root, bit)).is_err());
            }
            for bad in length_changes(&proof, root) {
                prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
            }
            // The proof is bound to the leaf's position. (Not to the size: a
            // tree of 3 leaves and one of 4 can share a path and root shape,
            // which is why the size must come with the trusted root.)
            if index + 1 < size {
                prop_assert!(verify_inclusion(index + 1, size, &leaf, &proof, &root).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_and_tampering_fails((old, new) in old_and_new_size()) {
            let leaves = leaves(new);
            let old_root = root_from_leaves(&leaves[..old as usize]);
            let new_root = root_from_leaves(&leaves);
            let proof = consistency_proof_from_leaves(old, &leaves).unwrap();
            prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));

            each_bit_flip(&proof, |bad| {
                assert!(verify_consistency(old, new, &old_root, &new_root, bad).is_err());
            });
            for bit in 0..256 {
                prop_assert!(verify_consistency(old, new, &flip(&old_root, bit), &new_root, &proof).is_err());
                prop_assert!(verify_consistency(old, new, &old_root, &flip(&new_root, bit), &proof).is_err());
            }
            for bad in length_changes(&proof, old_root) {
                prop_assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
            }
            prop_assert!(verify_consistency(old, new, &new_root, &old_root, &proof).is_err());
        }

        #[test]
        fn proofs_from_subtree_callback_match_slices((size, index) in size_and_index()) {
            // A caller backing `subtree` with a CompactTree per range (as a
            // store of subtree hashes would) gets the same proofs.
            let leaves = leaves(size);
            let by_compact = |start: u64, end: u64| {
                leaves_tree(&leaves[start as usize..end as usize]).root()
            };
            prop_assert_eq!(
                inclusion_proof(index, size, &by_compact).unwrap(),
                inclusion_proof_from_leaves(index, &leaves).unwrap()
            );
            let old = index + 1;
            prop_assert_eq!(
                consistency_proof(old, size, &by_compact).unwrap(),
                consistency_proof_from_leaves(old, &leaves).unwrap()
            );
        }
    }

    /// `cargo test -p vigil-ledger --release --lib leaf_hash_throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run in release mode"]
    fn leaf_hash_throughput() {
        const PAYLOAD: usize = 400;
        const TOTAL: usize = 400 * 1000 * 1000;
        let payloads: Vec<Vec<u8>> = (0..1024u32)
            .map(|i| (0..PAYLOAD).map(|j| (i as usize * 31 + j) as u8).collect())
            .collect();
        let start = std::time::Instant::now();
        let mut acc = [0u8; 32];
        for n in 0..TOTAL / PAYLOAD {
            let h = leaf_hash(std::hint::black_box(&payloads[n % payloads.len()]));
            acc[0] ^= h[0];
        }
        std::hint::black_box(acc);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "leaf_hash: {} x {PAYLOAD} B in {secs:.3} s = {:.0} MB/s ({:.2} M leaves/s)",
            TOTAL / PAYLOAD,
            TOTAL as f64 / secs / 1e6,
            (TOTAL / PAYLOAD) as f64 / secs / 1e6
        );
    }
}
