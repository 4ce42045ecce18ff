"""The journey from an old kubeadm cluster to a supported release: the skew rules, the schedule of
control-plane steps and drains, and the traps each release holds for a node on Docker Engine. Pure."""
