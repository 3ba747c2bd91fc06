//! Changes in place, lowered to assignments the IR understands (see `ir::InPlace`):
//! `np.exp(a, out=b)` gives `b` the value `np.exp(a)`; `np.copyto(dst, src)` gives `dst` the
//! value of `src` broadcast to it; `a.sort()`, `a.fill(v)` and the other mutating methods give
//! `a` a new value the IR does not look into; a call of a helper of the module that writes
//! into its arguments (see `effects`) returns their new values with its result.
//!
//! The generated primal code still performs the operation as written, on the same object.

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::{Normalizer, Result};
use crate::effects::{MUTATING_FUNCTIONS, MUTATING_METHODS, ufunc_inputs};
use crate::ir::{Atom, Callee, Expr, InPlace, Index};

impl Normalizer<'_> {
    /// `a.sort()`, `a.fill(v)`, `xs.extend([...])` on a local `a` (an expression statement):
    /// `Some(())` once lowered.
    pub(super) fn mutating_method(
        &mut self,
        call: &ast::ExprCall,
        stmt: &AStmt,
    ) -> Result<Option<()>> {
        let AExpr::Attribute(attr) = call.func.as_ref() else {
            return Ok(None);
        };
        let AExpr::Name(obj) = attr.value.as_ref() else {
            return Ok(None);
        };
        let (object, method) = (obj.id.as_str(), attr.attr.as_str());
        if !self.locals.contains(object)
            || self.stacks.contains(object)
            || !MUTATING_METHODS.contains(&method)
        {
            return Ok(None);
        }
        // `xs.extend([a, b])`: one append per item.
        if method == "extend" && call.arguments.keywords.is_empty() {
            if let [
                AExpr::List(ast::ExprList { elts, .. }) | AExpr::Tuple(ast::ExprTuple { elts, .. }),
            ] = &call.arguments.args[..]
            {
                if !elts.iter().any(|e| matches!(e, AExpr::Starred(_))) {
                    for e in elts {
                        let value = self.atom(e, "t")?;
                        let origin = self.origin.clone();
                        self.emit(crate::ir::Stmt::Append {
                            target: object.to_string(),
                            value,
                            origin,
                        });
                    }
                    return Ok(Some(()));
                }
            }
        }
        // Anything else: a new value of `a` the IR does not look into (refused where it
        // carries a derivative), made in place as written.
        let mut reads = Vec::new();
        super::collect_reads_stmt(stmt, &mut reads);
        let text = self.expr_text(&AExpr::Call(call.clone()));
        let value = Expr::Opaque {
            text: text.clone(),
            reads,
        };
        self.assign_in_place(object, value, InPlace::Into(text));
        Ok(Some(()))
    }

    /// `np.copyto(dst, src)` and the other functions writing into their first argument, as
    /// an expression statement already normalized to `e`: `Some(())` once lowered.
    pub(super) fn mutating_function(&mut self, e: &Expr) -> Result<Option<()>> {
        let Expr::Call {
            callee: Callee::Function {
                canonical: Some(c), ..
            },
            args,
            ..
        } = e
        else {
            return Ok(None);
        };
        if !MUTATING_FUNCTIONS.contains(&c.as_str()) {
            return Ok(None);
        }
        let Some(Atom::Name(target)) = args.first() else {
            return Ok(None);
        };
        let text = e.to_string();
        let value = match (c.as_str(), &args[..]) {
            // The source broadcast to the destination's shape and type.
            ("numpy.copyto", [dst, src]) => Expr::Call {
                callee: runtime("tangent.broadcast_into"),
                args: vec![src.clone(), dst.clone()],
                kwargs: Vec::new(),
            },
            _ => Expr::Opaque {
                text: text.clone(),
                reads: e.reads().into_iter().map(str::to_string).collect(),
            },
        };
        let target = target.clone();
        self.assign_in_place(&target, value, InPlace::Into(text));
        Ok(Some(()))
    }

    /// A NumPy call writing its result into an array it is given (`out=b`, or the positional
    /// `out` of a ufunc): `b` gets the value of the call without it, in place; the call's
    /// value is `b`. `None` for other calls.
    pub(super) fn call_with_out(
        &mut self,
        c: &ast::ExprCall,
        callee: &Callee,
        args: &mut Vec<Atom>,
        kwargs: &mut Vec<(String, Atom)>,
    ) -> Result<Option<Expr>> {
        let Callee::Function {
            canonical: Some(canon),
            ..
        } = callee
        else {
            return Ok(None);
        };
        let out = match kwargs.iter().position(|(k, _)| k == "out") {
            Some(i) => {
                if let Some(k) = c
                    .arguments
                    .keywords
                    .iter()
                    .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "out"))
                {
                    if matches!(k.value, AExpr::Tuple(_)) {
                        return Err(self.unsupported(k.range(), "`out=` with a tuple of arrays cannot be differentiated; give one array"));
                    }
                }
                Some(kwargs.remove(i).1)
            }
            None => match ufunc_inputs(canon) {
                Some(n) if args.len() > n => Some(args.remove(n)),
                _ => None,
            },
        };
        let Some(out) = out else { return Ok(None) };
        if let Some(k) = c
            .arguments
            .keywords
            .iter()
            .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "where"))
        {
            return Err(self.unsupported(k.range(), "`where=` with `out=` writes only part of the array, which cannot be differentiated; use `np.where(...)`"));
        }
        let Atom::Name(target) = out else {
            return Err(self.unsupported(c.range(), "`out=` must name an array"));
        };
        let target = self.out_array_itself(c, target);
        let value = Expr::Call {
            callee: callee.clone(),
            args: args.clone(),
            kwargs: kwargs.clone(),
        };
        let reads_target = args
            .iter()
            .chain(kwargs.iter().map(|(_, a)| a))
            .any(|a| a.name() == Some(target.as_str()));
        if reads_target {
            // `np.exp(a, out=a)`: the result has `a`'s shape, kept as written.
            let mut parts = crate::ir::call_arguments(args, kwargs);
            parts.push(format!("out={target}"));
            let text = match callee {
                Callee::Function { text, .. } => format!("{text}({})", parts.join(", ")),
                Callee::Method { .. } => unreachable!("a function"),
            };
            self.assign_in_place(&target, value, InPlace::Into(text));
        } else {
            // The result may be broadcast into `out` (`np.tanh(0.5, out=a)` fills all of
            // `a`): computed, then copied in, as NumPy does.
            let result = self.fresh(&target);
            self.locals.insert(result.clone());
            self.assign(&result, value);
            let copied = Expr::Call {
                callee: runtime("tangent.broadcast_into"),
                args: vec![Atom::Name(result.clone()), Atom::Name(target.clone())],
                kwargs: Vec::new(),
            };
            self.assign_in_place(
                &target,
                copied,
                InPlace::Into(format!("numpy.copyto({target}, {result})")),
            );
        }
        Ok(Some(Expr::Atom(Atom::Name(target))))
    }

    /// `out=np.asarray(x)` (scikit-learn's `np.exp(X, out=np.asarray(X))`): for an array `x`,
    /// `np.asarray` gives `x` itself, so the call writes into `x`; checked when the
    /// derivative runs (a list or another dtype would make a copy the write goes into).
    /// `held` (the name holding `np.asarray(x)`) for any other `out`.
    fn out_array_itself(&mut self, c: &ast::ExprCall, held: String) -> String {
        let Some(AExpr::Call(inner)) = c
            .arguments
            .keywords
            .iter()
            .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "out"))
            .map(|k| &k.value)
        else {
            return held;
        };
        let itself = super::dotted_name(&inner.func)
            .and_then(|d| self.scope.canonical(&d))
            .is_some_and(|canon| canon == "numpy.asarray" || canon == "numpy.asanyarray");
        let [AExpr::Name(x)] = &inner.arguments.args[..] else {
            return held;
        };
        if !itself || !inner.arguments.keywords.is_empty() || !self.locals.contains(x.id.as_str()) {
            return held;
        }
        let x = x.id.to_string();
        let line = self.file.line_of(c.range().start().into());
        let message = format!(
            "{}:{line}: `out=np.asarray({x})` is not `{x}` itself here (a list, or an array NumPy copied): the call writes into a copy, which Tangent does not follow; pass an array",
            self.file.path
        );
        self.runtime_check("tangent.same_object", &[&held, &x], &message);
        x
    }

    /// A call of a function of the module that writes into some of its arguments (see
    /// `effects`): `_g = g(a, b)` giving `(result, new b)`, then `b = _g[1]`; the call's value
    /// is `_g[0]`. `None` when the function writes into none of the names it is given.
    ///
    /// A parameter the function changes only with `p op= v` is changed in place when it is an
    /// array or a list, and not at all (`p` gets a new value) when it is a number: the call
    /// branches at run time on what the argument is. If the function also gives that
    /// parameter a new value, the caller's array would hold neither: refused at run time for
    /// an array (a number works) when every call changes it; when only some paths do (a copy
    /// made first on others), the call runs as it is and the caller's object is checked
    /// unchanged after it.
    pub(super) fn call_with_updates(
        &mut self,
        c: &ast::ExprCall,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
    ) -> Result<Option<Expr>> {
        let Callee::Function {
            text, local: true, ..
        } = callee
        else {
            return Ok(None);
        };
        let Some(summary) = self.effects.and_then(|e| e.get(text)).cloned() else {
            return Ok(None);
        };
        if summary.writes.is_empty() {
            return Ok(None);
        }
        let mut definite: Vec<(usize, String)> = Vec::new();
        let mut augmented: Vec<(usize, String)> = Vec::new();
        let mut checked: Vec<(String, String)> = Vec::new();
        for (i, p) in summary.params.iter().enumerate() {
            if !summary.writes.contains(p) {
                continue;
            }
            let arg = args
                .get(i)
                .or_else(|| kwargs.iter().find(|(k, _)| k == p).map(|(_, a)| a));
            let Some(Atom::Name(n)) = arg else { continue };
            // A new value made for the call (`g(x * 2.0)`, `g(np.tanh(x))`): no one else
            // sees it change.
            if self.made_for_the_call(n) {
                continue;
            }
            if definite.iter().chain(&augmented).any(|(_, u)| u == n)
                || checked.iter().any(|(_, u)| u == n)
            {
                continue;
            }
            if summary.rebinds.contains(p) && !summary.certain_writes.contains(p) {
                // It may write the caller's object or only a new value it made (a copy on
                // one path, `check_array`): whether the caller's object changed is checked
                // when the call has run.
                checked.push((p.clone(), n.clone()));
                continue;
            }
            if !summary.augmented_writes.contains(p) {
                if summary.rebinds.contains(p) {
                    return Err(self.unsupported(
                        c.range(),
                        format!("`{text}` changes its argument `{p}` in place and also gives `{p}` a new value: Tangent cannot tell which one the caller's `{n}` holds"),
                    )
                    .with_help(format!("inside `{text}`, give the new value another name than `{p}`, or make `{text}` return it instead of changing `{p}`")));
                }
                definite.push((i, n.clone()));
            } else if summary.rebinds.contains(p) {
                let line = self.file.line_of(c.range().start().into());
                let message = format!(
                    "{}:{line}: `{text}` changes its argument `{p}` in place (`{p} op= ...`, here `{n}`, an array or a list) and then gives `{p}` a new value: Tangent cannot tell what `{n}` holds after the call; make `{text}` return the new value",
                    self.file.path
                );
                self.runtime_check("tangent.in_place_check", &[n], &message);
            } else {
                augmented.push((i, n.clone()));
            }
        }
        if checked.is_empty() {
            return Ok(self.call_updating(text, callee, args, kwargs, definite, augmented));
        }
        let line = self.file.line_of(c.range().start().into());
        let (params, names): (Vec<String>, Vec<String>) = checked.into_iter().unzip();
        let message = format!(
            "{}:{line}: `{text}` changed in place what it was given for `{}` (here `{}`) and also gives it a new value: Tangent cannot tell which one the caller's value holds; inside `{text}`, give the new value another name, or return it",
            self.file.path,
            params.join("`, `"),
            names.join("`, `"),
        );
        let hint = text.rsplit('.').next().unwrap_or(text).to_string();
        Ok(Some(self.checked_unchanged(&names, &message, &hint, |n| {
            n.call_updating(text, callee, args, kwargs, definite, augmented)
                .unwrap_or_else(|| Expr::Call {
                    callee: callee.clone(),
                    args: args.to_vec(),
                    kwargs: kwargs.to_vec(),
                })
        })))
    }

    /// `value` (made by `make` after a snapshot of `names` is taken) into a fresh `hint`,
    /// then `tangent.check_unchanged` of `names` against the snapshot, raising `message`.
    fn checked_unchanged(
        &mut self,
        names: &[String],
        message: &str,
        hint: &str,
        make: impl FnOnce(&mut Self) -> Expr,
    ) -> Expr {
        let tuple = self.fresh("values");
        let saved = self.fresh("given");
        self.locals.insert(tuple.clone());
        self.locals.insert(saved.clone());
        self.assign(
            &tuple,
            Expr::Tuple(names.iter().map(|n| Atom::Name(n.clone())).collect()),
        );
        self.assign(
            &saved,
            Expr::Call {
                callee: runtime("tangent.snapshot"),
                args: vec![Atom::Name(tuple.clone())],
                kwargs: Vec::new(),
            },
        );
        let value = make(self);
        let result = self.fresh(hint);
        self.locals.insert(result.clone());
        self.assign(&result, value);
        self.runtime_check("tangent.check_unchanged", &[&tuple, &saved], message);
        Expr::Atom(Atom::Name(result))
    }

    /// `function(names..., "message")`: a check of Tangent's runtime, raising `message` when
    /// the derivative runs and finds what it cannot follow.
    fn runtime_check(&mut self, function: &str, names: &[&str], message: &str) {
        let origin = self.origin.clone();
        self.emit(crate::ir::Stmt::Opaque {
            text: format!(
                "{function}({}, {})",
                names.join(", "),
                crate::emit::python_string(message)
            ),
            reads: names.iter().map(|n| n.to_string()).collect(),
            origin,
        });
    }

    /// The call of `text` taking back the new values of the `definite` arguments, and of the
    /// `augmented` ones when they are arrays or lists (one branch each); `None` when it
    /// updates none.
    fn call_updating(
        &mut self,
        text: &str,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
        definite: Vec<(usize, String)>,
        augmented: Vec<(usize, String)>,
    ) -> Option<Expr> {
        if augmented.is_empty() {
            return (!definite.is_empty())
                .then(|| self.updating_call(text, callee, args, kwargs, definite));
        }
        // Changed in place for arrays and lists, not for numbers: one branch each.
        let mutable = self.fresh("in_place");
        self.locals.insert(mutable.clone());
        let names: Vec<Atom> = augmented
            .iter()
            .map(|(_, n)| Atom::Name(n.clone()))
            .collect();
        let test = Expr::Call {
            callee: runtime("tangent.is_mutable"),
            args: names,
            kwargs: Vec::new(),
        };
        self.assign(&mutable, test);
        let result = self.fresh(text.rsplit('.').next().unwrap_or(text));
        self.locals.insert(result.clone());
        let saved = std::mem::take(&mut self.out);
        let mut all = definite.clone();
        all.extend(augmented);
        let value = self.updating_call(text, callee, args, kwargs, all);
        self.assign(&result, value);
        let body = std::mem::take(&mut self.out);
        let value = if definite.is_empty() {
            Expr::Call {
                callee: callee.clone(),
                args: args.to_vec(),
                kwargs: kwargs.to_vec(),
            }
        } else {
            self.updating_call(text, callee, args, kwargs, definite)
        };
        self.assign(&result, value);
        let orelse = std::mem::replace(&mut self.out, saved);
        let origin = self.origin.clone();
        self.emit(crate::ir::Stmt::If {
            test: Expr::Atom(Atom::Name(mutable)),
            body,
            orelse,
            origin,
        });
        Some(Expr::Atom(Atom::Name(result)))
    }

    /// Is `name` a temporary holding a new value just made (arithmetic, a display, a NumPy
    /// function that is not a view, a copy): nothing else holds it.
    fn made_for_the_call(&self, name: &str) -> bool {
        if !self.temporaries.contains(name) {
            return false;
        }
        let made = self.out.iter().rev().find_map(|s| match s {
            crate::ir::Stmt::Assign {
                target,
                value,
                inplace: None,
                ..
            } if target == name => Some(value),
            _ => None,
        });
        match made {
            Some(
                Expr::BinOp { .. }
                | Expr::UnaryOp { .. }
                | Expr::Compare { .. }
                | Expr::Tuple(_)
                | Expr::List(_)
                | Expr::Dict(_),
            ) => true,
            Some(Expr::Call {
                callee:
                    Callee::Function {
                        canonical: Some(c), ..
                    },
                ..
            }) => {
                ["numpy.", "math.", "scipy."]
                    .iter()
                    .any(|m| c.starts_with(m))
                    && !crate::effects::is_view_function(c)
            }
            Some(Expr::Call {
                callee: Callee::Method { method, .. },
                ..
            }) => matches!(method.as_str(), "copy" | "astype" | "flatten" | "tolist"),
            _ => false,
        }
    }

    /// `_g = g(args)` returning its result and the new values of the `updated` arguments,
    /// each taken back (`b = _g[1]`); the call's value is `_g[0]`.
    fn updating_call(
        &mut self,
        text: &str,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
        updated: Vec<(usize, String)>,
    ) -> Expr {
        let result = self.fresh(text.rsplit('.').next().unwrap_or(text));
        self.locals.insert(result.clone());
        let value = Expr::Call {
            callee: callee.clone(),
            args: args.to_vec(),
            kwargs: kwargs.to_vec(),
        };
        self.assign_in_place(&result, value, InPlace::Updates(updated.clone()));
        for (k, (_, name)) in updated.iter().enumerate() {
            let index = (k + 1).to_string();
            let item = Expr::Subscript {
                value: Atom::Name(result.clone()),
                index: Index {
                    text: index.clone(),
                    arg: index,
                    reads: Vec::new(),
                },
            };
            self.assign_in_place(name, item, InPlace::Updated);
        }
        Expr::Subscript {
            value: Atom::Name(result),
            index: Index {
                text: "0".into(),
                arg: "0".into(),
                reads: Vec::new(),
            },
        }
    }
}

/// A function of Tangent's runtime, as generated code calls it.
pub(super) fn runtime(name: &str) -> Callee {
    Callee::Function {
        text: name.into(),
        canonical: Some(name.into()),
        local: false,
    }
}

impl Normalizer<'_> {
    /// A call of a function Tangent does not know (no recipe, not the module's), given the
    /// function's own values: it could change them in place, which the derivative would not
    /// see. The generated code keeps a snapshot of them and checks after the call that they
    /// are unchanged (raising at the line if not). `None` for other calls.
    pub(super) fn call_checked_unchanged(
        &mut self,
        c: &ast::ExprCall,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
    ) -> Option<Expr> {
        let recipes = self.recipes?;
        let unknown = match callee {
            Callee::Function { local: true, .. } => false,
            // (Functions known to write into their first argument are changes in place.)
            Callee::Function {
                canonical: Some(name),
                ..
            } => {
                !recipes.knows(name)
                    && !name.starts_with("builtins.")
                    && !name.starts_with("tangent.")
                    && !MUTATING_FUNCTIONS.contains(&name.as_str())
            }
            Callee::Function {
                canonical: None, ..
            } => true,
            Callee::Method { method, .. } => {
                !recipes.knows(&format!("numpy.{method}"))
                    && !crate::effects::DRAW_METHODS.contains(&method.as_str())
                    && !matches!(
                        method.as_str(),
                        "copy" | "astype" | "flatten" | "tolist" | "item"
                    )
            }
        };
        let given: Vec<String> = args
            .iter()
            .chain(kwargs.iter().map(|(_, a)| a))
            .filter_map(|a| a.name())
            .filter(|n| self.locals.contains(*n) && !self.stacks.contains(*n))
            .map(str::to_string)
            .collect();
        if !unknown || given.is_empty() {
            return None;
        }
        let call = Expr::Call {
            callee: callee.clone(),
            args: args.to_vec(),
            kwargs: kwargs.to_vec(),
        };
        let text = self.expr_text(&AExpr::Call(c.clone()));
        let line = self.file.line_of(c.range().start().into());
        let message = format!(
            "{}:{line}: `{text}` changed in place what it was given (`{}`): Tangent cannot differentiate a change it does not see; give it a copy, or a function Tangent knows",
            self.file.path,
            given.join("`, `")
        );
        Some(self.checked_unchanged(&given, &message, "result", |_| call))
    }
}
