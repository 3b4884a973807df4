package cli

import (
	"fmt"
	"io"
)

func bench(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "hippo bench: not built yet")
	return 2
}
