// Command kube-proxy is the upstream kube-proxy (iptables mode), built from k8s.io/kubernetes,
// so Services route on the real node as in a cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
