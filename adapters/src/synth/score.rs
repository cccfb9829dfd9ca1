//! How well a resolution found the synthetic city's true entities: pairwise precision
//! and recall of the clusters it made, against the ground truth.

use std::collections::HashMap;
use std::hash::Hash;

/// Pairwise scores: of all pairs of mentions put in one cluster, the share that are
/// truly one entity (precision), and of all pairs that are truly one entity, the share
/// put in one cluster (recall). Only mentions both sides know are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairwiseScore {
    /// Mentions both in the truth and in the clusters.
    pub mentions: u64,
    /// Pairs put together.
    pub predicted_pairs: u64,
    /// Pairs truly one entity.
    pub true_pairs: u64,
    /// Pairs put together that are truly one entity.
    pub correct_pairs: u64,
}

impl PairwiseScore {
    /// `truth` and `clusters` map each mention (any key type) to its true entity and
    /// to its cluster.
    pub fn measure<M, T, C>(truth: &HashMap<M, T>, clusters: &HashMap<M, C>) -> PairwiseScore
    where
        M: Eq + Hash,
        T: Eq + Hash,
        C: Eq + Hash,
    {
        let mut by_truth: HashMap<&T, u64> = HashMap::new();
        let mut by_cluster: HashMap<&C, u64> = HashMap::new();
        let mut by_both: HashMap<(&T, &C), u64> = HashMap::new();
        let mut mentions = 0;
        for (mention, entity) in truth {
            let Some(cluster) = clusters.get(mention) else {
                continue;
            };
            mentions += 1;
            *by_truth.entry(entity).or_default() += 1;
            *by_cluster.entry(cluster).or_default() += 1;
            *by_both.entry((entity, cluster)).or_default() += 1;
        }
        let pairs = |n: &u64| n * n.saturating_sub(1) / 2;
        PairwiseScore {
            mentions,
            predicted_pairs: by_cluster.values().map(pairs).sum(),
            true_pairs: by_truth.values().map(pairs).sum(),
            correct_pairs: by_both.values().map(pairs).sum(),
        }
    }

    /// 1.0 when no pair was put together wrongly (also when none was put together).
    pub fn precision(&self) -> f64 {
        ratio(self.correct_pairs, self.predicted_pairs)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.correct_pairs, self.true_pairs)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs_within_and_across_clusters() {
        // Truth: a, b, c are X; d is Y. Clusters: {a, b}, {c, d}.
        let truth = HashMap::from([("a", "X"), ("b", "X"), ("c", "X"), ("d", "Y"), ("e", "Z")]);
        let clusters = HashMap::from([("a", 1), ("b", 1), ("c", 2), ("d", 2)]);
        let score = PairwiseScore::measure(&truth, &clusters);
        assert_eq!(score.mentions, 4);
        assert_eq!(score.predicted_pairs, 2);
        assert_eq!(score.true_pairs, 3);
        assert_eq!(score.correct_pairs, 1);
        assert!((score.precision() - 0.5).abs() < 1e-9);
        assert!((score.recall() - 1.0 / 3.0).abs() < 1e-9);
        let nothing = PairwiseScore::measure(&truth, &HashMap::<&str, u8>::new());
        assert_eq!((nothing.precision(), nothing.recall()), (1.0, 1.0));
    }
}
