package limiter

import "fmt"

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ContendedError reports that a write lost the race for a hot item on every attempt it was
// allowed (WithMaxAttempts): nothing was written, and DynamoDB is healthy. Retrying soon, with
// the same idempotency key, is safe. Acquires never return it: they are refused instead
// (RateLimitExceededError.Contended).
type ContendedError struct {
	Op       string
	Attempts int
	Err      error // the last lost race
}

// Error names the operation and the attempts.
func (e *ContendedError) Error() string {
	return fmt.Sprintf("limiter contended: %s: lost the race %d times: %v", e.Op, e.Attempts, e.Err)
}

// Unwrap returns the last lost race.
func (e *ContendedError) Unwrap() error { return e.Err }
