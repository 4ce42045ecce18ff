"""A throwaway kubeadm 1.23 cluster of Docker Engine nodes on dockershim, built offline (`shimshift lab`)."""
