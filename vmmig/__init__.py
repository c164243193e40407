import warnings

# oslo.db and oslo.messaging import eventlet-capable helpers; vmmig itself never
# monkey-patches (threading executor only), so their deprecation notice is noise.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
