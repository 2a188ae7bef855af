//! The DAG of a plan: built once with petgraph, shared by validation, graphing and the executor.

use fixedbitset::FixedBitSet;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

/// Edges go from a step to the steps that need it.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    graph: DiGraph<(), ()>,
    order: Vec<usize>,
    /// Each step's position in `order`.
    pos: Vec<usize>,
}

/// Kahn's algorithm taking, among the steps whose needs are all placed, the one written first:
/// independent steps start in the order of the file. None when there is a cycle.
fn file_order_toposort(needs: &[Vec<usize>]) -> Option<Vec<usize>> {
    use std::cmp::Reverse;
    let mut blocked: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); needs.len()];
    for (step, ns) in needs.iter().enumerate() {
        for &n in ns {
            dependents[n].push(step);
        }
    }
    let mut ready: std::collections::BinaryHeap<Reverse<usize>> = (0..needs.len()).filter(|&i| blocked[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(needs.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            blocked[d] -= 1;
            if blocked[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    (order.len() == needs.len()).then_some(order)
}

impl Dag {
    /// Builds the graph of `n` steps from each step's needs. Returns the cycles (as step
    /// index lists, closed: `[a, b, a]`) when there are any.
    pub fn build(needs: &[Vec<usize>]) -> Result<Dag, Vec<Vec<usize>>> {
        let mut graph = DiGraph::with_capacity(needs.len(), needs.iter().map(Vec::len).sum());
        for _ in needs {
            graph.add_node(());
        }
        for (step, ns) in needs.iter().enumerate() {
            for &n in ns {
                graph.add_edge(NodeIndex::new(n), NodeIndex::new(step), ());
            }
        }
        match file_order_toposort(needs) {
            Some(order) => {
                let mut pos = vec![0; order.len()];
                for (p, &i) in order.iter().enumerate() {
                    pos[i] = p;
                }
                Ok(Dag { order, pos, graph })
            }
            None => Err(cycles(&graph)),
        }
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// A topological order (needs before dependents; ties in file order).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The steps that need `step` directly.
    pub fn dependents(&self, step: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.edges(NodeIndex::new(step)).map(|e| e.target().index())
    }

    /// Every step `step` needs, directly or not.
    pub fn ancestors(&self, step: usize) -> FixedBitSet {
        let mut seen = FixedBitSet::with_capacity(self.len());
        let mut stack = vec![NodeIndex::new(step)];
        while let Some(n) = stack.pop() {
            for p in self.graph.neighbors_directed(n, petgraph::Direction::Incoming) {
                if !seen.put(p.index()) {
                    stack.push(p);
                }
            }
        }
        seen
    }

    /// Whether `a` must finish before `b` starts (a need of `b`, directly or not).
    pub fn is_ancestor(&self, a: usize, b: usize) -> bool {
        if a == b {
            return false;
        }
        let (na, nb) = (NodeIndex::new(a), NodeIndex::new(b));
        if self.pos[a] > self.pos[b] {
            return false;
        }
        if self.graph.contains_edge(na, nb) {
            return true;
        }
        // Walk back from `b` through its needs, only among steps ordered after `a`: an
        // ancestor of `b` that comes before `a` in topological order cannot lead to `a`.
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![nb];
        while let Some(n) = stack.pop() {
            for p in self.graph.neighbors_directed(n, petgraph::Direction::Incoming) {
                if p == na {
                    return true;
                }
                if self.pos[p.index()] > self.pos[a] && seen.insert(p) {
                    stack.push(p);
                }
            }
        }
        false
    }

    /// Every step's ancestors, computed in one pass over the topological order.
    pub fn all_ancestors(&self) -> Vec<FixedBitSet> {
        let n = self.len();
        let mut anc = vec![FixedBitSet::with_capacity(n); n];
        for &s in &self.order {
            let parents: Vec<usize> =
                self.graph.neighbors_directed(NodeIndex::new(s), petgraph::Direction::Incoming).map(NodeIndex::index).collect();
            for p in parents {
                let pa = anc[p].clone();
                anc[s].union_with(&pa);
                anc[s].insert(p);
            }
        }
        anc
    }

    /// Edges as (need, dependent) pairs.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.graph.edge_references().map(|e| (e.source().index(), e.target().index()))
    }
}

/// One cycle per strongly connected component with more than one step (or a self-loop).
fn cycles(graph: &DiGraph<(), ()>) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for scc in tarjan_scc(graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        // Walk inside the component from its lowest step until a step repeats.
        let start = *scc.iter().min().expect("non-empty");
        let mut path = vec![start.index()];
        let mut cur = start;
        loop {
            let next = graph.neighbors(cur).filter(|n| scc.contains(n)).min().expect("a strongly connected step has a successor inside");
            if let Some(pos) = path.iter().position(|&p| p == next.index()) {
                let mut cycle = path[pos..].to_vec();
                cycle.push(next.index());
                // Print in "needs" direction: a needs b needs … a.
                cycle.reverse();
                out.push(cycle);
                break;
            }
            path.push(next.index());
            cur = next;
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_finds_ancestors() {
        // 0 <- 1 <- 2, 0 <- 3
        let dag = Dag::build(&[vec![], vec![0], vec![1], vec![0]]).unwrap();
        assert_eq!(dag.order().len(), 4);
        let pos = |s| dag.order().iter().position(|&x| x == s).unwrap();
        assert!(pos(0) < pos(1) && pos(1) < pos(2));
        assert_eq!(dag.ancestors(2).ones().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(dag.all_ancestors()[2].ones().collect::<Vec<_>>(), vec![0, 1]);
        assert!(dag.all_ancestors()[3].contains(0));
        assert!(dag.is_ancestor(0, 2) && dag.is_ancestor(1, 2) && !dag.is_ancestor(2, 0) && !dag.is_ancestor(3, 2));
    }

    #[test]
    fn ties_are_broken_in_file_order() {
        // 0, 1, 2 independent; 3 needs 2; 4 needs 0: a step comes as soon as its needs are
        // placed, and among those ready the one written first.
        let dag = Dag::build(&[vec![], vec![], vec![], vec![2], vec![0]]).unwrap();
        assert_eq!(dag.order(), &[0, 1, 2, 3, 4]);
        let dag = Dag::build(&[vec![1], vec![], vec![]]).unwrap();
        assert_eq!(dag.order(), &[1, 0, 2]);
    }

    #[test]
    fn reports_each_cycle() {
        // 0 needs 2, 1 needs 0, 2 needs 1; 3 needs itself
        let cycles = Dag::build(&[vec![2], vec![0], vec![1], vec![3]]).unwrap_err();
        assert_eq!(cycles.len(), 2);
        assert_eq!(cycles[0].first(), cycles[0].last());
        assert_eq!(cycles[0].len(), 4);
        assert_eq!(cycles[1], vec![3, 3]);
    }
}
