//! The food-delivery app on Perdure: the order workflow and its activities ([`order`]), the
//! order book both web apps read ([`book`]), the menu and driver web apps ([`web`]), and the
//! wiring that runs them with a worker and, optionally, an embedded server ([`app`]).

pub mod app;
pub mod book;
pub mod order;
pub mod web;
