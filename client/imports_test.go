package client

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsOnlyStandardLibrary: the client, and the one package of this
// module it uses, import nothing outside the standard library, so that
// using the client adds no dependency.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	const jsonscan = "github.com/hippo-db/hippo/internal/jsonscan"
	for _, dir := range []string{".", "../internal/jsonscan"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				first, _, _ := strings.Cut(path, "/")
				if strings.Contains(first, ".") && path != jsonscan {
					t.Errorf("%s imports %s", file, path)
				}
			}
		}
	}
}
