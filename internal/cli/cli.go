// Package cli implements the hippo command: serve, keys, bench and version.
package cli

import (
	"fmt"
	"io"
	"os"
)

// Version is the program version, set at build time with -ldflags.
var Version = "dev"

const usage = `hippo — the memory database for AI agents

Usage:
  hippo serve [flags]   run the server (hippo serve --help for its flags)
  hippo keys ...        create, list and revoke API keys (hippo keys help)
  hippo bench [flags]   run the benchmarks and print their tables
  hippo version         print the version

Every flag can also be set with an environment variable named in its help.
`

// Main runs the command line args (without the program name) and returns the
// process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "keys":
		return runKeys(args[1:], stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "hippo", Version)
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hippo: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// envOr returns the environment variable's value, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
