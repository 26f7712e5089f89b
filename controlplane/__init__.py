"""The control plane: the store (store/), and in time the apiserver, scheduler,
controllers and mDNS discovery. Nothing outside the apiserver touches the store."""
