// Command faultfetch is the Go fetcher of the fault matrix (tests/faults): for each stdin line
// "METHOD URL CONFIG_JSON" it sends one request through a fresh Transport and prints
// "status CODE BODY_LEN" or "error CODE".
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<16), 1<<20)
	for in.Scan() {
		parts := strings.SplitN(in.Text(), " ", 3)
		if len(parts) != 3 {
			fmt.Println("error invalid_request")
			continue
		}
		fmt.Println(fetch(parts[0], parts[1], parts[2]))
	}
}

func fetch(method, url, config string) string {
	t, err := wirecore.NewTransportJSON(config)
	if err != nil {
		return result(err)
	}
	defer t.Close()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("fault")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return result(err)
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return result(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return result(err)
	}
	return fmt.Sprintf("status %d %d", resp.StatusCode, n)
}

func result(err error) string {
	var we *wirecore.Error
	if errors.As(err, &we) {
		return "error " + we.Code
	}
	return "error other: " + err.Error()
}
