//! Perdure's engine: the functional core that turns worker commands and client requests into
//! history events ([`mutable`]), the shell that commits them and carries out their effects
//! ([`engine`]), in-memory matching of tasks to long polls ([`matching`]), durable timers
//! ([`timers`]) and the injected clock ([`clock`]). The storage interface is `perdure-store`,
//! re-exported as [`store`]. No transport and no SQL live here.

// Several Temporal fields the SDKs still read are marked deprecated in the protos.
#![allow(deprecated)]

pub mod clock;
pub mod cluster;
pub mod cron;
pub mod engine;
pub mod error;
pub mod events;
pub mod info;
pub mod limits;
pub mod matching;
pub mod mutable;
pub mod retry;
pub mod schedule;
pub mod state;
/// The storage interface (`perdure-store`).
pub use perdure_store as store;
pub mod timers;
pub mod token;

pub use engine::{Config, Engine};
pub use error::{Error, Result};
