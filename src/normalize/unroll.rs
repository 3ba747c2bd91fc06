//! Loops over a list of objects passed in (`for layer in layers: x = layer.forward(x)`), when
//! the API found the class of each item on the argument (`layers[0]` a `Dense`, `layers[1]`
//! an `Activation`, ...): unrolled, one copy of the body per item with the loop variable read
//! as that item (`layers[1].forward(x)`), so that each call is its item's class's method. The
//! unrolled code first checks that the list has as many items as the derivative was made for.

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr, walk_stmt};
use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::{Ranged, TextRange};

/// `def` with its loops over hinted lists unrolled; `None` when it has none. `method`: the
/// name of `self` and the class, in a method (its lists are `self.<path>`, hinted by class).
pub(super) fn unrolled_object_loops(
    def: &ast::StmtFunctionDef,
    hints: &BTreeMap<(String, String), String>,
    method: Option<&(String, String)>,
) -> Option<ast::StmtFunctionDef> {
    // The hint key of path `p` (`layers`, `self.layers`).
    let key = |p: &str| match method {
        Some((self_name, class)) if p.starts_with(&format!("{self_name}.")) => {
            (class.clone(), format!("self{}", &p[self_name.len()..]))
        }
        _ => (format!("def {}", def.name), p.to_string()),
    };
    let length = |p: &str| {
        (0..)
            .take_while(|i| {
                let (owner, path) = key(p);
                hints.contains_key(&(owner, format!("{path}[{i}]")))
            })
            .count()
    };
    let mut out = def.clone();
    let mut changed = false;
    let reads_outside = names_read_outside_loops(&def.body);
    out.body = unroll_block(&def.body, &length, &reads_outside, &mut changed).into();
    let mut body = Vec::new();
    for stmt in out.body.iter() {
        let comprehensions = Comprehensions {
            lengths: &length,
            unrolled: std::cell::RefCell::new(Vec::new()),
        };
        let mut stmt = stmt.clone();
        comprehensions.visit_stmt(&mut stmt);
        // The lists are checked to have the items the derivative was made for, first.
        for (list, n, range) in comprehensions.unrolled.into_inner() {
            body.push(length_check(&list, n, range));
            changed = true;
        }
        body.push(stmt);
    }
    out.body = body.into();
    changed.then_some(out)
}

/// `sum(term(x) for term in terms)` and `[layer(x) for layer in layers]` over a hinted list:
/// `terms[0](x) + terms[1](x) + ...`, `[layers[0](x), layers[1](x), ...]`.
struct Comprehensions<'c> {
    lengths: &'c dyn Fn(&str) -> usize,
    /// The lists unrolled: path, number of items, where.
    unrolled: std::cell::RefCell<Vec<(String, usize, TextRange)>>,
}

impl Comprehensions<'_> {
    /// The element of a one-`for` comprehension without conditions over a hinted list, once
    /// per item.
    fn items(&self, elt: &AExpr, generators: &[ast::Comprehension]) -> Option<Vec<AExpr>> {
        let [g] = generators else { return None };
        let AExpr::Name(target) = &g.target else {
            return None;
        };
        let list = super::methods::parameter_path(&g.iter)?;
        let n = (self.lengths)(&list);
        if n == 0 || !g.ifs.is_empty() || g.is_async {
            return None;
        }
        let range = g.iter.range();
        self.unrolled.borrow_mut().push((list, n, range));
        (0..n)
            .map(|i| {
                let item = item_of(&g.iter, i, range)?;
                let mut copy = elt.clone();
                ReadAs {
                    name: target.id.as_str(),
                    item: &item,
                }
                .visit_expr(&mut copy);
                Some(copy)
            })
            .collect()
    }
}

impl Transformer for Comprehensions<'_> {
    fn visit_expr(&self, expr: &mut AExpr) {
        walk_expr(self, expr);
        let replaced = match expr {
            AExpr::Call(c)
                if matches!(c.func.as_ref(), AExpr::Name(n) if n.id.as_str() == "sum")
                    && c.arguments.keywords.is_empty()
                    && c.arguments.args.len() == 1 =>
            {
                match &c.arguments.args[0] {
                    AExpr::Generator(g) => self.items(&g.elt, &g.generators).and_then(|items| {
                        items.into_iter().reduce(|left, right| {
                            AExpr::BinOp(ast::ExprBinOp {
                                node_index: ast::AtomicNodeIndex::NONE,
                                range: c.range(),
                                left: Box::new(left),
                                op: ast::Operator::Add,
                                right: Box::new(right),
                            })
                        })
                    }),
                    _ => None,
                }
            }
            AExpr::ListComp(l) => self.items(&l.elt, &l.generators).map(|elts| {
                AExpr::List(ast::ExprList {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range: l.range,
                    elts,
                    ctx: ast::ExprContext::Load,
                })
            }),
            _ => None,
        };
        if let Some(new) = replaced {
            *expr = new;
        }
    }
}

fn unroll_block(
    body: &[AStmt],
    lengths: &dyn Fn(&str) -> usize,
    reads_outside: &BTreeSet<String>,
    changed: &mut bool,
) -> Vec<AStmt> {
    let mut out = Vec::new();
    for stmt in body {
        if let Some(copies) = unrolled(stmt, lengths, reads_outside) {
            out.extend(copies);
            *changed = true;
            continue;
        }
        let mut stmt = stmt.clone();
        match &mut stmt {
            AStmt::If(s) => {
                s.body = unroll_block(&s.body, lengths, reads_outside, changed).into();
                for clause in &mut s.elif_else_clauses {
                    clause.body =
                        unroll_block(&clause.body, lengths, reads_outside, changed).into();
                }
            }
            AStmt::With(s) => {
                s.body = unroll_block(&s.body, lengths, reads_outside, changed).into()
            }
            AStmt::For(s) => s.body = unroll_block(&s.body, lengths, reads_outside, changed).into(),
            AStmt::While(s) => {
                s.body = unroll_block(&s.body, lengths, reads_outside, changed).into()
            }
            _ => {}
        }
        out.push(stmt);
    }
    out
}

/// `for v in P: body` (`P` a hinted list of `n` items, no `else`, no `break`/`continue`/
/// `return` in `body`, `v` not assigned there nor read after the loop) as `assert len(P) == n`
/// and `n` copies of `body` reading `P[i]` for `v`.
fn unrolled(
    stmt: &AStmt,
    lengths: &dyn Fn(&str) -> usize,
    reads_outside: &BTreeSet<String>,
) -> Option<Vec<AStmt>> {
    let AStmt::For(f) = stmt else { return None };
    let AExpr::Name(target) = f.target.as_ref() else {
        return None;
    };
    let list = super::methods::parameter_path(&f.iter)?;
    let n = lengths(&list);
    let variable = target.id.as_str();
    if n == 0 || f.is_async || !f.orelse.is_empty() || reads_outside.contains(variable) {
        return None;
    }
    let head = list.split(['.', '[']).next().unwrap_or_default();
    let mut assigned = BTreeSet::new();
    super::collect_assigned(&f.body, &mut assigned);
    if assigned.contains(variable) || assigned.contains(head) || exits(&f.body) {
        return None;
    }
    let header = TextRange::new(f.range().start(), f.iter.range().end());
    let mut out = vec![length_check(&list, n, header)];
    for i in 0..n {
        let item = item_of(&f.iter, i, header)?;
        let replace = ReadAs {
            name: variable,
            item: &item,
        };
        for s in &f.body {
            let mut copy = s.clone();
            replace.visit_stmt(&mut copy);
            out.push(copy);
        }
    }
    Some(out)
}

/// `list[i]`, at `range`.
fn item_of(list: &AExpr, i: usize, range: TextRange) -> Option<AExpr> {
    Some(AExpr::Subscript(ast::ExprSubscript {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        value: Box::new(list.clone()),
        slice: Box::new(AExpr::NumberLiteral(ast::ExprNumberLiteral {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            value: ast::Number::Int(ast::Int::from(u32::try_from(i).ok()?)),
        })),
        ctx: ast::ExprContext::Load,
    }))
}

/// `assert len(P) == n, "..."`: the derivative was made for `n` items.
fn length_check(list: &str, n: usize, range: TextRange) -> AStmt {
    let text = format!(
        "assert len({list}) == {n}, 'this derivative was generated for {n} objects in `{list}` (their classes); call tangent.grad again for another list'"
    );
    let parsed = ruff_python_parser::parse_module(&text).ok();
    let mut stmt = parsed
        .and_then(|p| p.into_syntax().body.into_iter().next())
        .unwrap_or(AStmt::Pass(ast::StmtPass {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
        }));
    Ranges(range).visit_stmt(&mut stmt);
    stmt
}

/// Does `body` leave its loop (`break`, `continue`, `return`), outside nested functions?
fn exits(body: &[AStmt]) -> bool {
    body.iter().any(|s| match s {
        AStmt::Break(_) | AStmt::Continue(_) | AStmt::Return(_) => true,
        AStmt::If(i) => exits(&i.body) || i.elif_else_clauses.iter().any(|c| exits(&c.body)),
        AStmt::With(w) => exits(&w.body),
        AStmt::Try(t) => exits(&t.body) || exits(&t.orelse) || exits(&t.finalbody),
        // A nested loop's own `break`/`continue` are its own; a `return` is not.
        AStmt::For(f) => returns(&f.body),
        AStmt::While(w) => returns(&w.body),
        _ => false,
    })
}

fn returns(body: &[AStmt]) -> bool {
    body.iter().any(super::scopes::contains_return)
}

/// Names read outside the bodies of `for` loops (a loop variable read after its loop).
fn names_read_outside_loops(body: &[AStmt]) -> BTreeSet<String> {
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
    struct V(BTreeSet<String>);
    impl<'a> Visitor<'a> for V {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            if let AStmt::For(f) = stmt {
                self.visit_expr(&f.iter);
                return;
            }
            walk_stmt(self, stmt);
        }
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Name(n) = expr {
                self.0.insert(n.id.to_string());
            }
            walk_expr(self, expr);
        }
    }
    let mut v = V(BTreeSet::new());
    v.visit_body(body);
    v.0
}

/// Reads of `name` as `item`.
struct ReadAs<'r> {
    name: &'r str,
    item: &'r AExpr,
}

impl Transformer for ReadAs<'_> {
    fn visit_stmt(&self, stmt: &mut AStmt) {
        if matches!(stmt, AStmt::FunctionDef(_) | AStmt::ClassDef(_)) {
            return;
        }
        walk_stmt(self, stmt);
    }

    fn visit_expr(&self, expr: &mut AExpr) {
        if let AExpr::Name(n) = expr
            && n.ctx == ast::ExprContext::Load
            && n.id.as_str() == self.name
        {
            let range = n.range;
            *expr = self.item.clone();
            if let AExpr::Subscript(s) = expr {
                s.range = range;
            }
            return;
        }
        walk_expr(self, expr);
    }
}

/// Gives every node the range `0` (a statement written by Tangent, placed at the loop).
struct Ranges(TextRange);

impl Transformer for Ranges {
    fn visit_stmt(&self, stmt: &mut AStmt) {
        if let AStmt::Assert(a) = stmt {
            a.range = self.0;
        }
        walk_stmt(self, stmt);
    }

    fn visit_expr(&self, expr: &mut AExpr) {
        walk_expr(self, expr);
        set_range(expr, self.0);
    }
}

fn set_range(expr: &mut AExpr, range: TextRange) {
    match expr {
        AExpr::Name(e) => e.range = range,
        AExpr::Compare(e) => e.range = range,
        AExpr::NumberLiteral(e) => e.range = range,
        AExpr::StringLiteral(e) => e.range = range,
        _ => {}
    }
}
