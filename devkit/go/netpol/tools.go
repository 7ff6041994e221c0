//go:build tools

// Package netpol pins the NetworkPolicy enforcer of devkit/node's real node:
// kube-router's network policy controller (iptables + ipset), kube-router v2.1.0
// from the Go module proxy, built as the upstream command
// (github.com/cloudnativelabs/kube-router/v2/cmd/kube-router) and run with only
// --run-firewall (no routing, no service proxy). See devkit/node/netpol.ts.
//
// Why not sigs.k8s.io/kube-network-policies v0.8.0: it hands packets to user
// space with nftables' native `queue` statement, and this machine's kernel is
// built without CONFIG_NFT_QUEUE (and loads no modules), so its first nftables
// transaction fails with ENOENT.
package netpol

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
