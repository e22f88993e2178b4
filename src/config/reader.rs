//! A strict reader over an HCL body: every attribute and block must be asked
//! for by name, and whatever is left at the end is an unknown key, reported
//! with its line. Values are evaluated with HCL's expression evaluator, which
//! gives `env("NAME")` for secrets kept out of the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hcl::edit::Span;
use hcl::edit::structure::{Block, Body, Structure};
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};

use super::ConfigError;

/// The file being read: for line numbers and error messages.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    ctx: Context<'a>,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        let mut ctx = Context::new();
        ctx.declare_func(
            "env",
            FuncDef::builder().param(ParamType::String).build(env_func),
        );
        Source { path, text, ctx }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub fn error(&self, span: Option<std::ops::Range<usize>>, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: span.map(|s| self.line_of(s.start)),
            message,
        }
    }
}

fn env_func(args: FuncArgs) -> Result<hcl::Value, String> {
    let name = args[0].as_str().unwrap_or_default();
    std::env::var(name)
        .map(hcl::Value::String)
        .map_err(|_| format!("environment variable {name} is not set"))
}

/// A block's body being read; `what` names it in messages (`environment "staging"`).
pub struct BodyReader<'s, 'b> {
    src: &'s Source<'s>,
    body: &'b Body,
    what: String,
    span: Option<std::ops::Range<usize>>,
    known: BTreeSet<&'static str>,
}

impl<'s, 'b> BodyReader<'s, 'b> {
    pub fn new(src: &'s Source<'s>, body: &'b Body, what: String) -> Self {
        BodyReader {
            src,
            body,
            what,
            span: None,
            known: BTreeSet::new(),
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn path(&self) -> PathBuf {
        self.src.path.to_path_buf()
    }

    /// An error about this block (at its first line).
    pub fn error(&self, message: String) -> ConfigError {
        self.src.error(self.span.clone(), message)
    }

    fn value(&mut self, key: &'static str) -> Result<Option<(hcl::Value, usize)>, ConfigError> {
        self.known.insert(key);
        let mut found = None;
        for attr in self.body.attributes().filter(|a| a.key.as_str() == key) {
            if found.is_some() {
                return Err(self.src.error(
                    attr.span(),
                    format!("`{key}` is set twice in {}", self.what),
                ));
            }
            let expr: hcl::Expression = attr.value.clone().into();
            let value = expr.evaluate(&self.src.ctx).map_err(|e| {
                self.src.error(
                    attr.span(),
                    format!("`{key}` in {} cannot be evaluated: {e}", self.what),
                )
            })?;
            let line = self.src.line_of(attr.span().map_or(0, |s| s.start));
            found = Some((value, line));
        }
        Ok(found)
    }

    fn wrong_type(&self, key: &str, line: usize, wanted: &str, got: &hcl::Value) -> ConfigError {
        ConfigError::Invalid {
            path: self.path(),
            line: Some(line),
            message: format!(
                "`{key}` in {} must be {wanted}, not {}",
                self.what,
                type_name(got)
            ),
        }
    }

    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::String(s), _)) => Ok(Some(s)),
            Some((v, line)) => Err(self.wrong_type(key, line, "a string", &v)),
        }
    }

    pub fn required_string(&mut self, key: &'static str) -> Result<String, ConfigError> {
        self.string(key)?
            .ok_or_else(|| self.error(format!("{} needs `{key}`", self.what)))
    }

    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::Bool(b), _)) => Ok(Some(b)),
            Some((v, line)) => Err(self.wrong_type(key, line, "true or false", &v)),
        }
    }

    pub fn u64(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::Number(n), line)) => n.as_u64().map(Some).ok_or_else(|| {
                self.wrong_type(key, line, "a whole number", &hcl::Value::Number(n))
            }),
            Some((v, line)) => Err(self.wrong_type(key, line, "a whole number", &v)),
        }
    }

    pub fn f64(&mut self, key: &'static str) -> Result<Option<f64>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::Number(n), _)) => Ok(n.as_f64()),
            Some((v, line)) => Err(self.wrong_type(key, line, "a number", &v)),
        }
    }

    pub fn strings(&mut self, key: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::Array(items), line)) => items
                .into_iter()
                .map(|v| match v {
                    hcl::Value::String(s) => Ok(s),
                    other => Err(self.wrong_type(key, line, "a list of strings", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some((v, line)) => Err(self.wrong_type(key, line, "a list of strings", &v)),
        }
    }

    /// A map of strings, e.g. terraform `vars = { region = "eu-west-1" }`.
    pub fn string_map(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::Object(map), line)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    hcl::Value::String(s) => Ok((k, s)),
                    hcl::Value::Number(n) => Ok((k, n.to_string())),
                    hcl::Value::Bool(b) => Ok((k, b.to_string())),
                    other => Err(self.wrong_type(key, line, "a map of strings", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some((v, line)) => Err(self.wrong_type(key, line, "a map of strings", &v)),
        }
    }

    /// Any value, as JSON (policy settings).
    pub fn json(&mut self, key: &'static str) -> Result<Option<serde_json::Value>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((v, line)) => {
                serde_json::to_value(&v)
                    .map(Some)
                    .map_err(|e| ConfigError::Invalid {
                        path: self.path(),
                        line: Some(line),
                        message: format!(
                            "`{key}` in {} is not representable as JSON: {e}",
                            self.what
                        ),
                    })
            }
        }
    }

    pub fn duration(&mut self, key: &'static str) -> Result<Option<Duration>, ConfigError> {
        self.parsed(
            key,
            "a duration such as \"30s\" or \"15m\"",
            crate::units::parse_duration,
        )
    }

    pub fn size(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        self.parsed(key, "a size such as \"256MiB\"", crate::units::parse_size)
    }

    fn parsed<T>(
        &mut self,
        key: &'static str,
        wanted: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.value(key)? {
            None => Ok(None),
            Some((hcl::Value::String(s), line)) => {
                parse(&s).map(Some).map_err(|e| ConfigError::Invalid {
                    path: self.path(),
                    line: Some(line),
                    message: format!("`{key}` in {}: {e}", self.what),
                })
            }
            Some((v, line)) => Err(self.wrong_type(key, line, wanted, &v)),
        }
    }

    /// One of a fixed set of strings.
    pub fn choice(
        &mut self,
        key: &'static str,
        choices: &[&str],
    ) -> Result<Option<String>, ConfigError> {
        let Some(s) = self.string(key)? else {
            return Ok(None);
        };
        if choices.contains(&s.as_str()) {
            Ok(Some(s))
        } else {
            Err(self.error(format!(
                "`{key}` in {} is \"{s}\"; it must be one of: {}",
                self.what,
                choices.join(", ")
            )))
        }
    }

    fn blocks_named(&mut self, ident: &'static str) -> Vec<&'b Block> {
        self.known.insert(ident);
        self.body
            .blocks()
            .filter(|b| b.ident.as_str() == ident)
            .collect()
    }

    /// The one unlabeled block `ident`, if present.
    pub fn block(
        &mut self,
        ident: &'static str,
    ) -> Result<Option<BodyReader<'s, 'b>>, ConfigError> {
        let blocks = self.blocks_named(ident);
        if let Some(second) = blocks.get(1) {
            return Err(self.src.error(
                second.span(),
                format!("{} has more than one `{ident}` block", self.what),
            ));
        }
        let Some(block) = blocks.first() else {
            return Ok(None);
        };
        if !block.labels.is_empty() {
            return Err(self.src.error(
                block.span(),
                format!("`{ident}` blocks in {} take no label", self.what),
            ));
        }
        Ok(Some(
            self.child(block, format!("{ident} block of {}", self.what)),
        ))
    }

    /// Every `ident "LABEL" { ... }` block, with its label; labels must be unique.
    pub fn labeled_blocks(
        &mut self,
        ident: &'static str,
    ) -> Result<Vec<(String, BodyReader<'s, 'b>)>, ConfigError> {
        let mut out: Vec<(String, BodyReader<'s, 'b>)> = Vec::new();
        for block in self.blocks_named(ident) {
            let [label] = block.labels.as_slice() else {
                return Err(self.src.error(
                    block.span(),
                    format!(
                        "`{ident}` blocks take exactly one label, e.g. {ident} \"name\" {{ ... }}"
                    ),
                ));
            };
            let label = label.as_str().to_string();
            if out.iter().any(|(l, _)| *l == label) {
                return Err(self.src.error(
                    block.span(),
                    format!("{ident} \"{label}\" is defined twice"),
                ));
            }
            let reader = self.child(block, format!("{ident} \"{label}\""));
            out.push((label, reader));
        }
        Ok(out)
    }

    fn child(&self, block: &'b Block, what: String) -> BodyReader<'s, 'b> {
        BodyReader {
            src: self.src,
            body: &block.body,
            what,
            span: block.span(),
            known: BTreeSet::new(),
        }
    }

    /// Fails on the first key nobody asked for, listing the keys that exist.
    pub fn finish(self) -> Result<(), ConfigError> {
        for structure in self.body.iter() {
            let (key, span, kind) = match structure {
                Structure::Attribute(a) => (a.key.as_str(), a.span(), "key"),
                Structure::Block(b) => (b.ident.as_str(), b.span(), "block"),
            };
            if !self.known.contains(key) {
                return Err(ConfigError::Unknown {
                    path: self.path(),
                    line: span.map(|s| self.src.line_of(s.start)),
                    message: format!("unknown {kind} `{key}` in {}", self.what),
                    known: self.known.iter().map(|k| k.to_string()).collect(),
                });
            }
        }
        Ok(())
    }
}

fn type_name(v: &hcl::Value) -> &'static str {
    match v {
        hcl::Value::Null => "null",
        hcl::Value::Bool(_) => "a boolean",
        hcl::Value::Number(_) => "a number",
        hcl::Value::String(_) => "a string",
        hcl::Value::Array(_) => "a list",
        hcl::Value::Object(_) => "an object",
    }
}
