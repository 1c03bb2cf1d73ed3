package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// loadgenAPI reads the load generator's HTTP API.
type loadgenAPI struct {
	base   string
	client *http.Client
}

type lgStatus struct {
	Clients      int   `json:"clients"`
	Synced       int   `json:"synced"`
	Responses    int64 `json:"responses"`
	Bytes        int64 `json:"bytes"`
	StreamErrors int64 `json:"stream_errors"`
}

type lgACK struct {
	At      int64  `json:"at"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

func (l *loadgenAPI) get(path string, v any) error {
	resp, err := l.client.Get(l.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (l *loadgenAPI) status() (lgStatus, error) {
	var s lgStatus
	err := l.get("/status", &s)
	return s, err
}

// acksSince returns, per node, the ACKs it sent after t.
func (l *loadgenAPI) acksSince(t time.Time) (map[string][]lgACK, error) {
	var out map[string][]lgACK
	err := l.get(fmt.Sprintf("/acks?since=%d", t.UnixNano()), &out)
	return out, err
}
