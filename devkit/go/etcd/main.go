// Command etcd is etcd's server (go.etcd.io/etcd/server/v3, 3.6), built from the
// Go module proxy for the local control plane of test/cluster. Debian's etcd
// (3.4) is too old for Kubernetes 1.31+.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
