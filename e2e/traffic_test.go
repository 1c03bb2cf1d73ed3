package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// caller sends HTTP requests to one of web's upstream listeners.
type caller struct {
	t      *testing.T
	client *http.Client
	url    string
}

func newCaller(t *testing.T, port int) *caller {
	return &caller{t: t, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, url: fmt.Sprintf("http://127.0.0.1:%d/", port)}
}

// call returns the name of the instance that answered, or an error.
func (c *caller) call() (string, error) {
	code, body, err := httpGet(context.Background(), c.client, c.url)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", code, body)
	}
	return body, nil
}

// tally sends n requests, failing the test on any error, and counts the
// answers by instance.
func (c *caller) tally(n int) map[string]int {
	c.t.Helper()
	seen := map[string]int{}
	for i := range n {
		who, err := c.call()
		if err != nil {
			c.t.Fatalf("request %d of %d: %v", i+1, n, err)
		}
		seen[who]++
	}
	return seen
}

// waitServedBy waits until `run` consecutive requests are all answered by
// instances in want, and returns when the first of that run was sent.
// Requests that fail while waiting are allowed only if allowErrors.
func (c *caller) waitServedBy(within time.Duration, run int, allowErrors bool, want ...string) time.Time {
	c.t.Helper()
	ok := map[string]bool{}
	for _, w := range want {
		ok[w] = true
	}
	deadline := time.Now().Add(within)
	var start time.Time
	streak := 0
	for time.Now().Before(deadline) {
		sent := time.Now()
		who, err := c.call()
		switch {
		case err != nil && !allowErrors:
			c.t.Fatalf("request failed while waiting for %v: %v", want, err)
		case err == nil && ok[who]:
			if streak == 0 {
				start = sent
			}
			streak++
			if streak == run {
				return start
			}
		default:
			streak = 0
		}
	}
	c.t.Fatalf("traffic not served only by %v within %v", want, within)
	return time.Time{}
}
