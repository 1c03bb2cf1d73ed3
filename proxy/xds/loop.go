package xds

import "context"

// loop runs one ADS stream's event loop, for either protocol variant: a
// goroutine receives responses with recv, and the loop hands each to
// handle and sends the paced NACKs that arrive on delayed, until recv or
// a handler fails or ctx ends. cancel must cancel ctx; loop calls it and
// waits for the receiving goroutine before it returns. gotResponse
// reports whether any response arrived, which resets the reconnection
// backoff.
func loop[Resp, Req any](ctx context.Context, cancel context.CancelFunc, recv func() (Resp, error),
	handle func(Resp) error, delayed <-chan Req, send func(Req) error) (gotResponse bool, err error) {
	responses, recvErr, done := make(chan Resp), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case responses <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	for {
		select {
		case <-ctx.Done():
			return gotResponse, ctx.Err()
		case err := <-recvErr:
			return gotResponse, err
		case resp := <-responses:
			gotResponse = true
			if err := handle(resp); err != nil {
				return gotResponse, err
			}
		case req := <-delayed:
			if err := send(req); err != nil {
				return gotResponse, err
			}
		}
	}
}
