// Package workpool runs jobs on goroutines that wait a while for the next
// job instead of exiting. A worker keeps the stack its jobs grew: a
// goroutine per job grows a fresh one every time (runtime.newstack),
// which for short, deep jobs (an HTTP/2 request's handler, an xDS ACK)
// costs as much as the job.
package workpool

import (
	"sync/atomic"
	"time"
)

// Pool runs jobs of type T with its run function. Go may be called from
// any goroutine; a job never waits for another to finish.
type Pool[T any] struct {
	run     func(T)
	work    chan T // to a worker waiting for a job
	idle    atomic.Int32
	started atomic.Int64
	maxIdle int32
	timeout time.Duration
	done    <-chan struct{}
}

// New returns a pool running jobs with run. At most maxIdle workers wait
// for a job, each for idleTimeout at most; once done is closed, waiting
// workers exit (a nil done never closes).
func New[T any](run func(T), maxIdle int, idleTimeout time.Duration, done <-chan struct{}) *Pool[T] {
	return &Pool[T]{run: run, work: make(chan T), maxIdle: int32(maxIdle), timeout: idleTimeout, done: done}
}

// Go runs job on a waiting worker, or on a new one.
func (p *Pool[T]) Go(job T) {
	select {
	case p.work <- job:
	default:
		p.started.Add(1)
		go p.worker(job)
	}
}

// Idle is how many workers wait for a job.
func (p *Pool[T]) Idle() int { return int(p.idle.Load()) }

// Started is how many workers Go has started.
func (p *Pool[T]) Started() int64 { return p.started.Load() }

func (p *Pool[T]) worker(job T) {
	var idle *time.Timer
	for {
		p.run(job)
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(p.timeout)
		} else {
			idle.Reset(p.timeout)
		}
		select {
		case job = <-p.work:
			p.idle.Add(-1)
		case <-idle.C:
			p.idle.Add(-1)
			return
		case <-p.done:
			p.idle.Add(-1)
			idle.Stop()
			return
		}
	}
}
