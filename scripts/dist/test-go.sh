#!/usr/bin/env bash
# A fresh Go module outside the repository uses the wirecore module through a `replace` to a
# copy of it (the files a module zip of a release would hold: the tracked ones plus the prebuilt
# library), builds with no cargo or rustc on PATH, no network (GOPROXY=off) and no build tags,
# and runs a GET against a fresh test server.
# Usage: test-go.sh TESTSERVER VERSION
set -euo pipefail
server=$(realpath "$1") version=$2
root="$(cd "$(dirname "$0")/../.." && pwd)"
go=$(command -v "${GO:-go}")
tmp="$(mktemp -d "${TMPDIR:-/tmp}/wirecore-dist-go.XXXXXX")"
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT  # go makes its module cache read-only
fail() { echo "test-dist-go: $*" >&2; exit 1; }

python3 "$root/scripts/dist/go_lib.py" check --require
mod="$tmp/wirecore-go"
mkdir "$mod"
(cd "$root/bindings/go" && { git ls-files --cached --others --exclude-standard; find internal/capi/prebuilt -type f; } | tar -cf - -T -) | tar -C "$mod" -xf -
app="$tmp/app"
mkdir "$app"
cat > "$app/go.mod" <<MOD
module example.com/app

go 1.26

require github.com/wirecore/wirecore/bindings/go v$version

replace github.com/wirecore/wirecore/bindings/go => ../wirecore-go
MOD
cat > "$app/main.go" <<'GO'
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

func main() {
	t, err := wirecore.NewTransport(wirecore.Config{})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	resp, err := (&http.Client{Transport: t}).Get(os.Args[1] + "/bytes/1024")
	if err != nil {
		panic(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(body) != 1024 {
		fmt.Fprintf(os.Stderr, "status %d, %d bytes, %v\n", resp.StatusCode, len(body), err)
		os.Exit(1)
	}
	fmt.Printf("go: wirecore %s GET /bytes/1024 -> %d, %d bytes\n", wirecore.Version(), resp.StatusCode, len(body))
	if wirecore.Version() != os.Args[2] {
		fmt.Fprintf(os.Stderr, "the library says %s, the module is %s\n", wirecore.Version(), os.Args[2])
		os.Exit(1)
	}
}
GO
clean_path="$(dirname "$go"):/usr/local/bin:/usr/bin:/bin"
for tool in cargo rustc; do
  if PATH=$clean_path command -v "$tool" >/dev/null; then fail "$tool is on the clean PATH ($clean_path)"; fi
done
(cd "$app" && env -i PATH="$clean_path" HOME="$HOME" GOCACHE="$("$go" env GOCACHE)" GOPATH="$tmp/gopath" \
  GOPROXY=off GOFLAGS= CGO_ENABLED=1 go build -o app .) || fail "the module did not build without cargo"

coproc SRV { exec "$server" --exit-on-stdin-eof; }
line=""
read -r -t 30 line <&"${SRV[0]}" || fail "the test server did not start"
http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$line")
"$app/app" "$http" "$version"
echo "test-dist-go: ok (built with PATH=$clean_path, GOPROXY=off; $(du -h "$app/app" | cut -f1) binary)"
