package xds

import "time"

// nackRecord remembers the last NACK of a type to pace identical repeats.
type nackRecord struct {
	version, reason string
	repeats         int
	timer           *time.Timer
}

// paceNack records a NACK of version for reason. It reports now=true when
// the NACK is new (another version or reason) and must be sent at once;
// otherwise it returns how long to wait before sending the repeat, and the
// caller sets nacks[typeURL].timer. A server that re-sends a rejected
// version thus cannot spin the client.
func paceNack(nacks map[string]*nackRecord, typeURL, version, reason string, b Backoff) (delay time.Duration, now bool) {
	rec := nacks[typeURL]
	if rec != nil && rec.timer != nil {
		rec.timer.Stop()
	}
	if rec == nil || rec.version != version || rec.reason != reason {
		nacks[typeURL] = &nackRecord{version: version, reason: reason}
		return 0, true
	}
	delay = b.Delay(rec.repeats)
	rec.repeats++
	return delay, false
}

// clearNack forgets typeURL's NACK after an ACK.
func clearNack(nacks map[string]*nackRecord, typeURL string) {
	if rec := nacks[typeURL]; rec != nil && rec.timer != nil {
		rec.timer.Stop()
	}
	delete(nacks, typeURL)
}

func stopNackTimers(nacks map[string]*nackRecord) {
	for _, rec := range nacks {
		if rec.timer != nil {
			rec.timer.Stop()
		}
	}
}
