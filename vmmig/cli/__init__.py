"""The commands of the ``vmmig`` operator CLI (cliff); the application is vmmig.cmd.cli."""

import warnings

# oslo.messaging imports oslo.service, which imports eventlet; vmmig uses the threading
# executor, and an operator's terminal is no place for eventlet's deprecation notice.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
