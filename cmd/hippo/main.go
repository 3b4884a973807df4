// Command hippo is the memory database for AI agents. See `hippo --help`.
package main

import (
	"os"

	"github.com/hippo-db/hippo/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
