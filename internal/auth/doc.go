// Package auth decides who may do what on a Hippo server: the access class of
// each listener, API keys with scopes and collection patterns, peer
// credentials of Unix-socket clients, and the rate and concurrency limits
// that keep one client from starving the others.
//
// # Model
//
// A request's access is the intersection of two grants:
//
//   - its listener's class (read < write < admin), fixed when the server
//     starts (ListenerSpec, parsed from --listen);
//   - on listeners with Auth == AuthKey, its API key's scope and collection
//     patterns (Key).
//
// Every route declares the class it needs (httpapi's route table); a request
// is served only if both grants reach that class and, for a route about one
// collection, the key's patterns match the collection.
//
// # Invariants
//
//   - Secrets are never stored: a key's secret is 256 random bits, and the
//     store keeps only its SHA-256. A slow password hash buys nothing for a
//     secret that cannot be guessed, and would cost every request.
//   - Keyring is the only writer of keys, and it updates its in-memory map
//     after the store: a revocation answered is a revocation in force, and
//     ActiveKey.Context is cancelled so that streams of the key end too.
//   - Listener limits (Gate, rate) are shared by every connection of the
//     listener; key limits by every request of the key, on any listener.
//   - A connection without a Conn in its context has no access at all (the
//     HTTP layer refuses it); nothing here defaults to open.
package auth
