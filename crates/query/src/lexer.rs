//! Tokens of the visibility query language: names (plain or backtick-quoted), quoted strings,
//! numbers, comparison operators and punctuation.

use std::fmt;

use crate::{QueryError, malformed};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name or keyword; `true` when it was backtick-quoted (never a keyword then).
    Ident(String, bool),
    Str(String),
    Int(i64),
    Float(f64),
    Op(String),
    Minus,
    LParen,
    RParen,
    Comma,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s, _) => write!(f, "'{s}'"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Int(i) => write!(f, "{i}"),
            Tok::Float(x) => write!(f, "{x}"),
            Tok::Op(o) => write!(f, "'{o}'"),
            Tok::Minus => write!(f, "'-'"),
            Tok::LParen => write!(f, "'('"),
            Tok::RParen => write!(f, "')'"),
            Tok::Comma => write!(f, "','"),
            Tok::Eof => write!(f, "end of query"),
        }
    }
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            chars: src.char_indices().collect(),
            i: 0,
        }
    }

    fn pos(&self) -> usize {
        self.chars
            .get(self.i)
            .map(|c| c.0)
            .unwrap_or(self.src.len())
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|c| c.1)
    }

    /// All tokens with their byte positions, ending with `Eof`.
    pub(crate) fn tokens(mut self) -> Result<Vec<(Tok, usize)>, QueryError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let start = self.pos();
            if c.is_whitespace() {
                self.i += 1;
                continue;
            }
            let tok = match c {
                '(' => {
                    self.i += 1;
                    Tok::LParen
                }
                ')' => {
                    self.i += 1;
                    Tok::RParen
                }
                ',' => {
                    self.i += 1;
                    Tok::Comma
                }
                '-' => {
                    self.i += 1;
                    Tok::Minus
                }
                '=' => {
                    self.i += 1;
                    Tok::Op("=".into())
                }
                '!' | '<' | '>' => {
                    self.i += 1;
                    let next = self.peek();
                    let op = match (c, next) {
                        ('!', Some('=')) | ('<', Some('>')) => {
                            self.i += 1;
                            "!=".to_string()
                        }
                        ('<', Some('=')) | ('>', Some('=')) => {
                            self.i += 1;
                            format!("{c}=")
                        }
                        ('!', _) => {
                            return Err(malformed(format!("unexpected '!' at position {start}")));
                        }
                        _ => c.to_string(),
                    };
                    Tok::Op(op)
                }
                '\'' | '"' => Tok::Str(self.string(c, start)?),
                '`' => {
                    self.i += 1;
                    let s = self.pos();
                    while self.peek().is_some_and(|c| c != '`') {
                        self.i += 1;
                    }
                    if self.peek().is_none() {
                        return Err(malformed(format!(
                            "unterminated `name` at position {start}"
                        )));
                    }
                    let name = self.src[s..self.pos()].to_string();
                    self.i += 1;
                    Tok::Ident(name, true)
                }
                c if c.is_ascii_digit() || c == '.' => self.number(start)?,
                c if c.is_alphabetic() || c == '_' => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    {
                        self.i += 1;
                    }
                    Tok::Ident(self.src[start..self.pos()].to_string(), false)
                }
                c => {
                    return Err(malformed(format!(
                        "unexpected character {c:?} at position {start}"
                    )));
                }
            };
            out.push((tok, start));
        }
        out.push((Tok::Eof, self.src.len()));
        Ok(out)
    }

    fn string(&mut self, quote: char, start: usize) -> Result<String, QueryError> {
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(malformed(format!(
                        "unterminated string starting at position {start}"
                    )));
                }
                Some('\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) => {
                            s.push(c);
                            self.i += 1;
                        }
                        None => continue,
                    }
                }
                Some(c) if c == quote => {
                    self.i += 1;
                    if self.peek() == Some(quote) {
                        s.push(quote);
                        self.i += 1;
                    } else {
                        return Ok(s);
                    }
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn number(&mut self, start: usize) -> Result<Tok, QueryError> {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E')
        {
            self.i += 1;
        }
        let text = &self.src[start..self.pos()];
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Tok::Int(i));
        }
        text.parse::<f64>()
            .map(Tok::Float)
            .map_err(|_| malformed(format!("bad number {text:?} at position {start}")))
    }
}
