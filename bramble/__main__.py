from bramble.cli import main

main()
