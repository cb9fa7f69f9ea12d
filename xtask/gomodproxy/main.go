// Command gomodproxy writes one version of a Go module into a module proxy
// tree (what GOPROXY=file://DIR reads), in the go command's own formats:
//
//	DIR/<escaped module path>/@v/list            the versions, one a line
//	DIR/<escaped module path>/@v/<version>.info  {"Version": ..., "Time": ...}
//	DIR/<escaped module path>/@v/<version>.mod   the module's go.mod
//	DIR/<escaped module path>/@v/<version>.zip   golang.org/x/mod/zip.CreateFromDir
//
// It prints the go.sum lines of that version (the h1: hashes the checksum
// database will hold once the same tree is published). `cargo xtask dist`
// runs it with `go run` (xtask/src/dist/go.rs):
//
//	go run . -module github.com/turnout-dev/turnout-go -version v0.2.0 \
//	    -dir STAGED_MODULE -out target/dist/goproxy -time 2026-01-02T03:04:05Z
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

func main() {
	path := flag.String("module", "", "module path")
	version := flag.String("version", "", "version (vX.Y.Z)")
	dir := flag.String("dir", "", "the module's directory (its go.mod at the root)")
	out := flag.String("out", "", "the module proxy tree to write into")
	stamp := flag.String("time", "", "the version's time (RFC 3339)")
	flag.Parse()
	if err := run(*path, *version, *dir, *out, *stamp); err != nil {
		fmt.Fprintln(os.Stderr, "gomodproxy:", err)
		os.Exit(1)
	}
}

func run(path, version, dir, out, stamp string) error {
	if path == "" || version == "" || dir == "" || out == "" {
		return fmt.Errorf("-module, -version, -dir and -out are required")
	}
	mv := module.Version{Path: path, Version: version}
	if err := module.Check(path, version); err != nil {
		return err
	}
	if semver.Canonical(version) != version {
		return fmt.Errorf("%s is not a canonical semantic version", version)
	}
	t := time.Now().UTC()
	if stamp != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, stamp); err != nil {
			return err
		}
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if got := modfile.ModulePath(gomod); got != path {
		return fmt.Errorf("%s/go.mod declares module %q, not %q", dir, got, path)
	}

	// Files the zip would leave out (irregular files, nested modules) are
	// an error here: the staged tree must be exactly what is published.
	files, err := modzip.CheckDir(dir)
	if err != nil {
		return err
	}
	if len(files.Omitted) > 0 || len(files.Invalid) > 0 {
		return fmt.Errorf("%s: files left out of the module zip: %v %v", dir, files.Omitted, files.Invalid)
	}

	escPath, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	escVersion, err := module.EscapeVersion(version)
	if err != nil {
		return err
	}
	vdir := filepath.Join(out, filepath.FromSlash(escPath), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(vdir, escVersion)

	tmp := base + ".zip.tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := modzip.CreateFromDir(f, mv, dir); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, base+".zip"); err != nil {
		return err
	}
	if err := os.WriteFile(base+".mod", gomod, 0o644); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, t})
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".info", append(info, '\n'), 0o644); err != nil {
		return err
	}
	if err := addToList(filepath.Join(vdir, "list"), version); err != nil {
		return err
	}

	h1, err := dirhash.HashZip(base+".zip", dirhash.Hash1)
	if err != nil {
		return err
	}
	h1mod, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n%s %s/go.mod %s\n", path, version, h1, path, version, h1mod)
	return nil
}

// addToList adds version to the proxy's list file (sorted, no duplicates).
func addToList(list, version string) error {
	seen := map[string]bool{version: true}
	if b, err := os.ReadFile(list); err == nil {
		for _, v := range strings.Fields(string(b)) {
			seen[v] = true
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	versions := make([]string, 0, len(seen))
	for v := range seen {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return semver.Compare(versions[i], versions[j]) < 0 })
	return os.WriteFile(list, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}
