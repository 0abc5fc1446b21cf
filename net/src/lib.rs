//! The remote transport for procession.
//!
//! This crate grows into the TCP [`Transport`](procession::Transport) (one connection per peer,
//! links across nodes, authentication). Today it holds the wire format every part of it stands
//! on: the [`frame`] codec, which turns events into length-prefixed, versioned frames and
//! back, and refuses bad input with an error instead of panicking or allocating what a length
//! prefix claims.

#![forbid(unsafe_code)]

pub mod frame;
