"""A test kit for VMM authors who test their own listeners.

* :mod:`flatview.testing.trees` — hypothesis strategies for random region trees
  (``trees()``), recorded as plain data (:class:`~flatview.testing.trees.Tree`);
* :mod:`flatview.testing.steps` — random changes to such a tree grouped into
  transactions (``transactions(tree)``, ``apply(tree, transaction)``);
* :class:`ConformanceCheck` — registered after the listener under test, it checks
  after every commit that the listener's own state equals the rendered view;
* a pytest plugin (:mod:`flatview.testing.plugin`, loaded through the ``pytest11``
  entry point when flatview is installed): fixtures ``memory_system``, ``sim_vm``
  (a simulated KVM VM) and ``conformance`` (a :class:`ConformanceCheck` factory
  that unregisters its checks at teardown).

The strategies need ``hypothesis`` (``pip install flatview[testing]``); this
package and the plugin import without it.  ``examples/custom_listener.py`` shows
the kit on a small custom listener.  The kit is a tool: it may use every layer
(the plugin's ``sim_vm`` is :class:`kvm_backend.SimVm`).
"""

from flatview.testing.conformance import ConformanceCheck, ConformanceError, RangeState, view_state

__all__ = ["ConformanceCheck", "ConformanceError", "RangeState", "view_state"]
