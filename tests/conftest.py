"""Suite-wide settings.

``make test`` runs two pytest workers on a 2-core machine; torch's default of one OpenMP thread
per core would make every worker's small tensor ops contend for both cores (a 192-element
log-softmax measured 3.7 ms instead of 4 us), so each worker uses one thread.
"""

import torch

torch.set_num_threads(1)
