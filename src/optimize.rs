//! Optimization of generated code: dead-code elimination and propagation of single-use
//! temporaries. Works on the `Code` tree, using each statement's defined and read names.

use std::collections::BTreeSet;

use crate::code::Code;

pub fn optimize(body: &mut Vec<Code>) {
    // Iterate: removing one dead statement can make its inputs dead.
    for _ in 0..8 {
        let mut live = BTreeSet::new();
        if !dce(body, &mut live) {
            break;
        }
    }
}

/// Backward liveness over a block; removes pure statements whose definitions are dead.
/// `live` is the set of names live after the block, updated to those live before it.
fn dce(block: &mut Vec<Code>, live: &mut BTreeSet<String>) -> bool {
    let mut changed = false;
    let mut keep = vec![true; block.len()];
    for (i, c) in block.iter_mut().enumerate().rev() {
        match c {
            Code::Stmt { defs, uses, pure, .. } => {
                if *pure && !defs.is_empty() && defs.iter().all(|d| !live.contains(d)) {
                    keep[i] = false;
                    changed = true;
                    continue;
                }
                for d in defs.iter() {
                    live.remove(d);
                }
                live.extend(uses.iter().cloned());
            }
            Code::Comment(_) => {}
            Code::If { uses, body, orelse, .. } => {
                let mut l1 = live.clone();
                changed |= dce(body, &mut l1);
                let mut l2 = live.clone();
                changed |= dce(orelse, &mut l2);
                live.extend(l1);
                live.extend(l2);
                live.extend(uses.iter().cloned());
            }
            Code::Loop { defs, uses, body, .. } => {
                // Names live at the top of an iteration are live at its end too.
                let mut l = live.clone();
                let mut inner = live.clone();
                for _ in 0..3 {
                    let mut trial = inner.clone();
                    let mut copy = body.clone();
                    dce(&mut copy, &mut trial);
                    let next: BTreeSet<String> = l.union(&trial).cloned().collect();
                    if next == inner {
                        break;
                    }
                    inner = next;
                }
                let mut at_top = inner.clone();
                changed |= dce(body, &mut at_top);
                l.extend(at_top);
                for d in defs.iter() {
                    l.remove(d);
                }
                l.extend(uses.iter().cloned());
                *live = l;
            }
        }
    }
    let mut i = 0;
    block.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
    // Comments that announce nothing.
    let mut cleaned = Vec::with_capacity(block.len());
    let n = block.len();
    for (j, c) in block.drain(..).enumerate() {
        let _ = (j, n);
        cleaned.push(c);
    }
    let mut out: Vec<Code> = Vec::with_capacity(cleaned.len());
    for c in cleaned {
        if let Code::Comment(_) = &c {
            if let Some(Code::Comment(_)) = out.last() {
                out.pop();
            }
        }
        out.push(c);
    }
    if let Some(Code::Comment(_)) = out.last() {
        out.pop();
    }
    *block = out;
    changed
}
