from trustusbank.cli.app import main

main()
