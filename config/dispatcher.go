package config

// Dispatcher configures the packet-level dispatcher (tern dispatch).
type Dispatcher struct {
	Interface string `yaml:"interface"`
}

func (d *Dispatcher) check(add func(path, msg string)) {
	if d.Interface == "" {
		add("dispatcher.interface", "dispatcher: interface is required")
	}
}
