from restytriage.cli import main

main()
