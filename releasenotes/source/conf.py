project = 'vmmig release notes'
extensions = ['reno.sphinxext']
