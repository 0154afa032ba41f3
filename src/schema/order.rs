//! Orders pre-data objects so that each comes after what it needs, as the server records it
//! in `pg_depend`: a topological sort that, among the objects ready at each point, takes the
//! lowest kind first (schemas, extensions, types, functions, sequences, tables, defaults,
//! views, materialized views), then the name, so the order is stable from run to run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::catalog::{Dep, ObjRef};

/// One object to create: its catalog identity (if dependencies can name it), its kind's rank
/// and its name for tie-breaks.
pub struct Item {
    pub key: Option<ObjRef>,
    pub rank: u8,
    pub name: String,
}

/// The order to create `items` in (indexes into it), and the items that had to be placed
/// before something they need because they are in a dependency cycle.
pub fn sort(items: &[Item], deps: &[Dep], extra: &[(usize, usize)]) -> (Vec<usize>, Vec<usize>) {
    let by_key: HashMap<ObjRef, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| it.key.map(|k| (k, i)))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    let mut waiting = vec![0usize; items.len()];
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut edge = |from: usize, to: usize| {
        if from != to && seen.insert((from, to)) {
            after[to].push(from);
            waiting[from] += 1;
        }
    };
    for d in deps {
        if let (Some(&from), Some(&to)) = (by_key.get(&d.from), by_key.get(&d.to)) {
            edge(from, to);
        }
    }
    for &(from, to) in extra {
        edge(from, to);
    }
    let key = |i: usize| Reverse((items[i].rank, items[i].name.clone(), i));
    let mut ready: BinaryHeap<Reverse<(u8, String, usize)>> = (0..items.len())
        .filter(|&i| waiting[i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(items.len());
    let mut placed = vec![false; items.len()];
    let mut forced = Vec::new();
    while order.len() < items.len() {
        let i = match ready.pop() {
            Some(Reverse((_, _, i))) => i,
            None => {
                // A cycle: place the first object still waiting, as if it were ready.
                let Some(i) = (0..items.len())
                    .filter(|&i| !placed[i])
                    .min_by_key(|&i| (items[i].rank, &items[i].name))
                else {
                    break;
                };
                forced.push(i);
                i
            }
        };
        if placed[i] {
            continue;
        }
        placed[i] = true;
        order.push(i);
        for &next in &after[i] {
            waiting[next] = waiting[next].saturating_sub(1);
            if waiting[next] == 0 && !placed[next] {
                ready.push(key(next));
            }
        }
    }
    (order, forced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: ObjRef, rank: u8, name: &str) -> Item {
        Item {
            key: Some(key),
            rank,
            name: name.into(),
        }
    }

    #[test]
    fn needs_come_first_then_rank_then_name() {
        // A function returning a table's rows, a view on that function, a plain table.
        let items = vec![
            item(ObjRef::Function(1), 3, "public.f"),
            item(ObjRef::Relation(2), 5, "public.t"),
            item(ObjRef::Relation(3), 7, "public.v"),
            item(ObjRef::Relation(4), 5, "public.a"),
        ];
        let deps = [
            Dep {
                from: ObjRef::Function(1),
                to: ObjRef::Relation(2),
            },
            Dep {
                from: ObjRef::Relation(3),
                to: ObjRef::Function(1),
            },
            Dep {
                from: ObjRef::Relation(3),
                to: ObjRef::Type(99),
            },
        ];
        let (order, forced) = sort(&items, &deps, &[]);
        assert_eq!(order, vec![3, 1, 0, 2]);
        assert!(forced.is_empty());
    }

    #[test]
    fn a_cycle_is_broken_and_reported() {
        let items = vec![
            item(ObjRef::Function(1), 3, "public.f"),
            item(ObjRef::Relation(2), 5, "public.t"),
        ];
        let deps = [
            Dep {
                from: ObjRef::Function(1),
                to: ObjRef::Relation(2),
            },
            Dep {
                from: ObjRef::Relation(2),
                to: ObjRef::Function(1),
            },
        ];
        let (order, forced) = sort(&items, &deps, &[]);
        assert_eq!(order, vec![0, 1]);
        assert_eq!(forced, vec![0]);
    }
}
